"""Ledger records → response bodies: links, progress and the ETA estimate."""

from __future__ import annotations

import datetime as dt

from rag_indexer_service.api.cabinet_list import ListedCabinet
from rag_indexer_service.api.schemas import (
    CabinetSummary,
    Progress,
    RunCounters,
    RunFailure,
    RunLinks,
    RunOut,
)
from rag_indexer_service.runs import Run

__all__ = [
    "API_PREFIX",
    "MAX_FAILURES_SHOWN",
    "cabinet_path",
    "cabinet_summary",
    "progress_of",
    "run_links",
    "run_out",
    "run_path",
]

API_PREFIX = "/api/v1"
MAX_FAILURES_SHOWN = 100


def run_path(run_id: int) -> str:
    return f"{API_PREFIX}/rag/runs/{run_id}"


def cabinet_path(cabinet_id: int) -> str:
    return f"{API_PREFIX}/rag/cabinets/{cabinet_id}"


def cabinet_links(cabinet_id: int) -> dict[str, str]:
    """Where a client goes from a cabinet: itself, its runs, its search and its index."""
    return {
        "self": cabinet_path(cabinet_id),
        "runs": f"{API_PREFIX}/rag/runs?cabinet_id={cabinet_id}",
        "search": f"{cabinet_path(cabinet_id)}/search",
        "index": f"{API_PREFIX}/rag/index/{cabinet_id}",
    }


def run_links(run: Run) -> RunLinks:
    return RunLinks.model_validate(
        {"self": run_path(run.id), "cabinet": cabinet_path(run.cabinet_id)}
    )


def progress_of(run: Run) -> Progress:
    """Progress of the current attempt; a linear ETA while running with a known total.

    The rate is documents per second between the run's start and its last heartbeat (both
    database timestamps, so no clock of this process is involved).
    """
    done, total = run.progress_done, run.progress_total
    percent = None if not total else round(min(done / total, 1.0) * 100, 1)
    eta_s: float | None = None
    eta_at: dt.datetime | None = None
    if (
        run.status == "running"
        and total
        and done > 0
        and run.started_at is not None
        and run.heartbeat_at is not None
    ):
        elapsed_s = (run.heartbeat_at - run.started_at).total_seconds()
        if elapsed_s > 0:
            eta_s = round(max(total - done, 0) * elapsed_s / done, 1)
            eta_at = run.heartbeat_at + dt.timedelta(seconds=eta_s)
    return Progress(done=done, total=total, percent=percent, eta_s=eta_s, eta_at=eta_at)


def run_out(run: Run) -> RunOut:
    failures = [
        RunFailure(kind=f.get("kind", ""), doc_id=f.get("doc_id", ""), reason=f.get("reason", ""))
        for f in (run.failures or [])[:MAX_FAILURES_SHOWN]
    ]
    return RunOut(
        run_id=run.id,
        cabinet_id=run.cabinet_id,
        trigger=run.trigger,
        status=run.status,
        queue=run.queue,
        attempt=run.attempt,
        rerun_requested=run.rerun_requested,
        forced=run.forced,
        follow_up_of=run.follow_up_of,
        counters=RunCounters(**run.counters),
        mode=run.mode,
        full_reason=run.full_reason,
        progress=progress_of(run),
        duration_s=run.duration_s,
        error=run.error,
        failures=failures,
        queued_at=run.queued_at,
        sent_at=run.sent_at,
        started_at=run.started_at,
        heartbeat_at=run.heartbeat_at,
        finished_at=run.finished_at,
        updated_at=run.updated_at,
        links=run_links(run),
    )


def cabinet_summary(
    cabinet: ListedCabinet, *, embedder_id: str, stale_after_s: float
) -> CabinetSummary:
    index = cabinet.index
    cabinet_id = cabinet.cabinet_id
    built_by = None if index is None else index.embedder_id
    return CabinetSummary(
        cabinet_id=cabinet_id,
        indexed=not cabinet.never_indexed,
        documents=0 if index is None else index.document_count,
        chunks=0 if index is None else index.chunk_count,
        embedder_id=built_by,
        embedder_current=None if built_by is None else built_by == embedder_id,
        last_indexed_at=None if index is None else index.last_indexed_at,
        last_success_at=None if index is None else index.last_success_at,
        staleness_s=None
        if index is None or index.staleness_s is None
        else round(index.staleness_s, 3),
        stale=cabinet.is_stale(stale_after_s),
        failing=cabinet.failing,
        last_run=None if cabinet.last_run is None else run_out(cabinet.last_run),
        active_run=None if cabinet.active_run is None else run_out(cabinet.active_run),
        links=cabinet_links(cabinet_id),
    )
