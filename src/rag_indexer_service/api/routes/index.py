"""`POST /rag/index/{cabinet_id}` and `POST /rag/index`: ask the workers for runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response, status

from rag_indexer_service.api.deps import CabinetId, DispatcherDep, RuntimeDep
from rag_indexer_service.api.errors import error_responses
from rag_indexer_service.api.routes.base import protected_router
from rag_indexer_service.api.schemas import BulkTriggerResponse, TriggerResponse
from rag_indexer_service.api.views import run_links, run_path
from rag_indexer_service.jobs.broker import queue_for
from rag_indexer_service.service import trigger_listed_cabinet

__all__ = ["router"]

router = protected_router("indexing")


@router.post(
    "/rag/index/{cabinet_id}",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Index one cabinet now",
    description=(
        "Queues a manual run of the cabinet on the fast queue and answers at once. While the "
        "cabinet already has a queued or running run, that run is returned "
        "(`deduplicated: true`); if it is already running, exactly one follow-up run will "
        "index what changed meanwhile (`rerun_requested: true`). `force=true` scans even "
        "if the source's fingerprint is unchanged (a run not yet started becomes forced). "
        "Poll `links.self`."
    ),
    responses=error_responses(404, 422, 502),
)
async def trigger_cabinet(
    cabinet_id: CabinetId,
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    dispatcher: DispatcherDep,
    force: Annotated[
        bool, Query(description="Scan even if the source's fingerprint is unchanged.")
    ] = False,
) -> TriggerResponse:
    result = await trigger_listed_cabinet(
        source=runtime.source,
        dispatcher=dispatcher,
        cabinet_id=cabinet_id,
        trigger="manual",
        force=force,
    )
    run = result.run
    request.state.run_id = run.id
    response.headers["Location"] = run_path(run.id)
    return TriggerResponse(
        run_id=run.id,
        cabinet_id=run.cabinet_id,
        status=run.status,
        trigger=run.trigger,
        deduplicated=result.deduplicated,
        rerun_requested=run.rerun_requested,
        forced=run.forced,
        queued_at=run.queued_at,
        links=run_links(run),
    )


@router.post(
    "/rag/index",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Index every cabinet now",
    description=(
        "Queues a manual run for every cabinet the source lists that has no active run "
        "(bulk path: batched ledger inserts, pipelined sends). `force=true`: the new runs "
        "scan even if the source's fingerprint is unchanged; active runs are left as they are."
    ),
    responses=error_responses(422, 502),
)
async def trigger_all(
    runtime: RuntimeDep,
    dispatcher: DispatcherDep,
    force: Annotated[
        bool, Query(description="Scan even if the source's fingerprint is unchanged.")
    ] = False,
) -> BulkTriggerResponse:
    ids = [cabinet_id async for cabinet_id in runtime.source.iter_cabinet_ids()]
    result = await dispatcher.enqueue_cabinets(ids, "manual", force=force)
    return BulkTriggerResponse(
        requested=result.requested,
        enqueued=result.enqueued,
        already_active=result.already_active,
        queue=queue_for("manual"),
    )
