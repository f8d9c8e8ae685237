"""`GET /rag/runs/{run_id}` and `GET /rag/runs`: what the ledger knows about runs."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request

from rag_indexer_service.api.deps import LedgerDep, RunId, RunReaderDep
from rag_indexer_service.api.errors import MAX_INT64, NotFound, error_responses
from rag_indexer_service.api.pagination import CURSOR_PATTERN, decode_cursor, encode_cursor
from rag_indexer_service.api.routes.base import protected_router
from rag_indexer_service.api.schemas import RunOut, RunPage
from rag_indexer_service.api.views import run_out
from rag_indexer_service.runs import RunStatus

__all__ = ["MAX_PAGE", "router"]

MAX_PAGE = 200

router = protected_router("runs")


@router.get(
    "/rag/runs/{run_id}",
    summary="One run: status, attempt, counters, progress and ETA",
    responses=error_responses(404, 422),
)
async def get_run(run_id: RunId, request: Request, runs: RunReaderDep) -> RunOut:
    run = await runs.get(run_id)
    if run is None:
        raise NotFound(f"run {run_id} does not exist", code="run_not_found")
    request.state.run_id = run.id
    return run_out(run)


@router.get(
    "/rag/runs", summary="Runs, newest first, one page at a time", responses=error_responses(422)
)
async def list_runs(
    request: Request,
    ledger: LedgerDep,
    cabinet_id: Annotated[
        int | None, Query(ge=1, le=MAX_INT64, description="Only runs of this cabinet.")
    ] = None,
    status: Annotated[RunStatus | None, Query(description="Only runs in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Runs per page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            description="`next_cursor` of the previous page (opaque).",
            examples=["k3"],
        ),
    ] = None,
) -> RunPage:
    before_id = None if cursor is None else decode_cursor(cursor)
    found = await ledger.list_runs(
        cabinet_id=cabinet_id, status=status, limit=limit + 1, before_id=before_id
    )
    page = found[:limit]
    next_cursor = encode_cursor(page[-1].id) if len(found) > limit else None
    next_url = None
    if next_cursor is not None:
        params = {**request.query_params, "cursor": next_cursor}
        next_url = f"{request.url.path}?{urlencode(params)}"
    return RunPage(runs=[run_out(run) for run in page], next_cursor=next_cursor, next=next_url)
