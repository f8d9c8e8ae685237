"""The console's pages: overview, cabinets, a cabinet, runs, a run; `/ui/live/...` serves the
parts of them that refresh themselves (progress bars, queue depths)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any, get_args

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from rag_indexer_service.api.cabinet_list import CabinetFilter, CabinetSort, list_cabinets
from rag_indexer_service.api.deps import ContextDep
from rag_indexer_service.api.errors import NotFound
from rag_indexer_service.api.pagination import decode_cursor, encode_cursor
from rag_indexer_service.api.routes.cabinets import DEFAULT_STALE_AFTER_S, get_cabinet
from rag_indexer_service.api.schemas import MAX_K, MAX_QUERY_CHARS
from rag_indexer_service.api.views import cabinet_summary, run_out
from rag_indexer_service.errors import CabinetNotFound, RagIndexerError
from rag_indexer_service.runs import COUNTER_FIELDS, RUN_STATUSES, Run
from rag_indexer_service.scheduling import scheduler_records
from rag_indexer_service.service import trigger_listed_cabinet
from rag_indexer_service.ui.charts import duration_bars, status_bars
from rag_indexer_service.ui.guard import Console, ConsoleDep, SessionDep, verify_post
from rag_indexer_service.ui.session import Session

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/ui", include_in_schema=False)

PAGE_SIZE = 50
CABINET_RUNS_SHOWN = 30
_CURSOR_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz")


def _cursor(raw: str | None) -> int | None:
    if raw and len(raw) <= 12 and set(raw) <= _CURSOR_CHARS:
        return decode_cursor(raw)
    return None


def _choice(raw: str | None, allowed: tuple[str, ...]) -> str | None:
    return raw if raw in allowed else None


def _positive_int(raw: str | None) -> int | None:
    if raw and raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63:
        return int(raw)
    return None


def _refused(
    console: Console, reason: str, *, session: Session | None = None, status_code: int = 404
) -> Response:
    """A console page saying why there is nothing to show (never the API's JSON)."""
    return console.renderer.page(
        "refused.html", status_code=status_code, session=session, reason=reason
    )


def _not_an_id(what: str, raw: str) -> str:
    return f"{raw!r} is not a {what} id: {what} ids are positive integers, such as 4."


async def _overview_live(context: Any) -> dict[str, Any]:
    active = await context.ledger.active_runs(limit=50)
    try:
        queues = await asyncio.wait_for(asyncio.to_thread(context.probe.queue_depths), 3)
    except Exception as exc:
        log.warning("console: cannot read the queues: %s", type(exc).__name__)
        queues = None
    return {"active": [run_out(r) for r in active], "queues": queues}


@router.get("")
async def overview(context: ContextDep, console: ConsoleDep, session: SessionDep) -> Response:
    counts = await context.ledger.hourly_status_counts(hours=24)
    totals: dict[str, int] = {}
    for _, status, n in counts:
        totals[status] = totals.get(status, 0) + n
    records = await scheduler_records(
        context.runtime.db.engine, silent_after_s=3 * context.runtime.settings.reaper_interval_s
    )
    failures = await context.ledger.list_runs(status="failed", limit=8)
    return console.renderer.page(
        "overview.html",
        session=session,
        chart=status_bars(counts, now=dt.datetime.now(dt.UTC)),
        totals=totals,
        statuses=RUN_STATUSES,
        schedulers=records.schedulers,
        last_tick=records.last_tick,
        failures=[run_out(r) for r in failures],
        **await _overview_live(context),
    )


@router.get("/live/overview")
async def overview_live(context: ContextDep, console: ConsoleDep, _: SessionDep) -> Response:
    return console.renderer.page("_overview_live.html", **await _overview_live(context))


@router.get("/cabinets")
async def cabinets(
    request: Request, context: ContextDep, console: ConsoleDep, session: SessionDep
) -> Response:
    params = request.query_params
    raw_status = (params.get("status") or "").strip()
    raw_sort = (params.get("sort") or "").strip()
    raw_q = (params.get("q") or "").strip()
    status = _choice(raw_status, get_args(CabinetFilter))
    sort = _choice(raw_sort, get_args(CabinetSort)) or "id"
    q = raw_q if raw_q.isascii() and raw_q.isdigit() and len(raw_q) <= 19 else None
    problems = []
    if raw_q and q is None:
        problems.append(f"{raw_q!r} is not the start of a cabinet id: ids are digits, such as 4.")
    if raw_status and status is None:
        problems.append(
            f"{raw_status!r} is not a filter: one of {', '.join(get_args(CabinetFilter))}."
        )
    if raw_sort and raw_sort != sort:
        problems.append(f"{raw_sort!r} is not an order: one of {', '.join(get_args(CabinetSort))}.")
    rows: list[Any] = []
    total, next_cursor = 0, None
    if not problems:  # a filter that cannot be applied shows nothing, not everything
        listing = await list_cabinets(
            source=context.runtime.source,
            store=context.runtime.store,
            ledger=context.ledger,
            status=status,  # type: ignore[arg-type]
            id_prefix=q,
            sort=sort,  # type: ignore[arg-type]
            stale_after_s=DEFAULT_STALE_AFTER_S,
            limit=PAGE_SIZE,
            offset=_cursor(params.get("cursor")) or 0,
        )
        embedder_id = context.runtime.indexer.embedder.id
        rows = [
            cabinet_summary(c, embedder_id=embedder_id, stale_after_s=DEFAULT_STALE_AFTER_S)
            for c in listing.cabinets
        ]
        total = listing.total
        if listing.next_offset is not None:
            next_cursor = encode_cursor(listing.next_offset)
    return console.renderer.page(
        "cabinets.html",
        status_code=400 if problems else 200,
        session=session,
        problems=problems,
        rows=rows,
        total=total,
        q=raw_q,
        status=status,
        sort=sort,
        filters=get_args(CabinetFilter),
        next_cursor=next_cursor,
        stale_after_s=DEFAULT_STALE_AFTER_S,
    )


async def _cabinet_live(context: Any, cabinet_id: int) -> dict[str, Any]:
    try:
        cabinet = await get_cabinet(cabinet_id, context.runtime, context.ledger)
    except (NotFound, CabinetNotFound):
        cabinet = None
    return {"cabinet": cabinet, "cabinet_id": cabinet_id}


@router.get("/cabinets/{cabinet}")
async def cabinet(
    cabinet: str,
    request: Request,
    context: ContextDep,
    console: ConsoleDep,
    session: SessionDep,
) -> Response:
    cabinet_id = _positive_int(cabinet)
    if cabinet_id is None:
        return _refused(console, _not_an_id("cabinet", cabinet), session=session)
    live = await _cabinet_live(context, cabinet_id)
    if live["cabinet"] is None:
        return _refused(console, f"Cabinet {cabinet_id} is unknown here.", session=session)
    runs = await context.ledger.list_runs(cabinet_id=cabinet_id, limit=CABINET_RUNS_SHOWN)
    query = (request.query_params.get("q") or "").strip()[:MAX_QUERY_CHARS]
    k = min(_positive_int(request.query_params.get("k")) or 5, MAX_K)
    hits, search_error = None, None
    if query:
        try:
            hits = await context.runtime.indexer.search(cabinet_id, query, k=k)
        except RagIndexerError as exc:
            search_error = str(exc)
    return console.renderer.page(
        "cabinet.html",
        session=session,
        runs=[run_out(r) for r in runs],
        chart=duration_bars(runs),
        query=query,
        k=k,
        hits=hits,
        search_error=search_error,
        **live,
    )


@router.get("/live/cabinets/{cabinet}")
async def cabinet_live(
    cabinet: str, context: ContextDep, console: ConsoleDep, _: SessionDep
) -> Response:
    cabinet_id = _positive_int(cabinet)
    live = None if cabinet_id is None else await _cabinet_live(context, cabinet_id)
    if live is None or live["cabinet"] is None:
        return _refused(console, "no such cabinet")
    return console.renderer.page("_cabinet_live.html", **live)


@router.post("/cabinets/{cabinet}/runs")
async def queue_run(
    cabinet: str,
    request: Request,
    context: ContextDep,
    console: ConsoleDep,
    session: SessionDep,
) -> Response:
    form = await verify_post(request, session)
    cabinet_id = _positive_int(cabinet)
    if cabinet_id is None:
        return _refused(console, _not_an_id("cabinet", cabinet), session=session)
    try:
        result = await trigger_listed_cabinet(
            source=context.runtime.source,
            dispatcher=context.dispatcher,
            cabinet_id=cabinet_id,
            trigger="manual",
            force=form.get("force") == "1",
        )
    except CabinetNotFound:
        return _refused(console, f"The source does not list cabinet {cabinet_id}.", session=session)
    log.info(
        "console: run %s of cabinet %s requested (deduplicated=%s)",
        result.run.id,
        cabinet_id,
        result.deduplicated,
    )
    return RedirectResponse(f"/ui/runs/{result.run.id}", status_code=303)


@router.get("/runs")
async def runs(
    request: Request, context: ContextDep, console: ConsoleDep, session: SessionDep
) -> Response:
    params = request.query_params
    # `cabinet` is the CLI's name for the filter (`runs --cabinet`): it means the same here.
    raw_cabinet = (params.get("cabinet_id") or params.get("cabinet") or "").strip()
    raw_status = (params.get("status") or "").strip()
    cabinet_id = _positive_int(raw_cabinet)
    status = _choice(raw_status, RUN_STATUSES)
    problems = []
    if raw_cabinet and cabinet_id is None:
        problems.append(_not_an_id("cabinet", raw_cabinet))
    if raw_status and status is None:
        problems.append(f"{raw_status!r} is not a run status: one of {', '.join(RUN_STATUSES)}.")
    found: list[Run] = []
    if not problems:  # a filter that cannot be applied shows nothing, not everything
        found = await context.ledger.list_runs(
            cabinet_id=cabinet_id,
            status=status,  # type: ignore[arg-type]
            limit=PAGE_SIZE + 1,
            before_id=_cursor(params.get("cursor")),
        )
    page = found[:PAGE_SIZE]
    return console.renderer.page(
        "runs.html",
        status_code=400 if problems else 200,
        session=session,
        runs=[run_out(r) for r in page],
        cabinet_id=cabinet_id,
        cabinet_text=raw_cabinet,
        status=status,
        statuses=RUN_STATUSES,
        problems=problems,
        next_cursor=encode_cursor(page[-1].id) if len(found) > PAGE_SIZE else None,
    )


async def _run_or_none(context: Any, run_id: int) -> Run | None:
    run: Run | None = await context.runs.get(run_id)
    return run


@router.get("/runs/{run}")
async def run(run: str, context: ContextDep, console: ConsoleDep, session: SessionDep) -> Response:
    run_id = _positive_int(run)
    if run_id is None:
        return _refused(console, _not_an_id("run", run), session=session)
    found = await _run_or_none(context, run_id)
    if found is None:
        return _refused(console, f"Run {run_id} does not exist.", session=session)
    return console.renderer.page(
        "run.html", session=session, run=run_out(found), raw=found, counter_names=COUNTER_FIELDS
    )


@router.get("/live/runs/{run}")
async def run_live(run: str, context: ContextDep, console: ConsoleDep, _: SessionDep) -> Response:
    run_id = _positive_int(run)
    found = None if run_id is None else await _run_or_none(context, run_id)
    if found is None:
        return _refused(console, "no such run")
    return console.renderer.page(
        "_run_live.html", run=run_out(found), raw=found, counter_names=COUNTER_FIELDS
    )


@router.get("/{path:path}")
async def elsewhere(path: str, console: ConsoleDep, session: SessionDep) -> Response:
    """Any other address under /ui: a console page saying so (the API answers JSON)."""
    if not path:
        return RedirectResponse("/ui", status_code=307)
    return _refused(console, f"There is no console page at /ui/{path}.", session=session)
