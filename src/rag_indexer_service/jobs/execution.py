"""Running one claimed run: index its cabinet with heartbeats, record the outcome.

`execute_claimed_run()` is the body both front ends share: the worker's actor and
`run_inline()` (the CLI's `index`, no broker). `should_retry()` and `describe_error()` decide
what a failure means and how the ledger shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from dramatiq.middleware import TimeLimitExceeded

from rag_indexer_service.db.engine import is_connection_error, short_error
from rag_indexer_service.errors import (
    CabinetBusy,
    DatabaseUnavailable,
    PermanentError,
    RagIndexerError,
)
from rag_indexer_service.indexing.indexer import ProgressCallback
from rag_indexer_service.indexing.report import IndexReport
from rag_indexer_service.jobs.broker import QUEUE_MANUAL
from rag_indexer_service.runs import Ledger, Run
from rag_indexer_service.runtime import Runtime

__all__ = ["describe_error", "execute_claimed_run", "run_inline", "should_retry"]

log = logging.getLogger(__name__)


def should_retry(retries_so_far: int, exc: BaseException, max_retries: int) -> bool:
    """Retry anything but a permanent error, up to `max_retries` times."""
    return not isinstance(exc, PermanentError) and retries_so_far < max_retries


def describe_error(exc: BaseException, *, time_limit_s: float) -> str:
    """The run's `error` text in the ledger."""
    if isinstance(exc, TimeLimitExceeded):
        return f"time limit exceeded: the attempt ran longer than {time_limit_s:g} s"
    text = str(exc).strip() or "(no message)"
    return f"{type(exc).__name__}: {text}"


async def execute_claimed_run(
    rt: Runtime,
    ledger: Ledger,
    run: Run,
    *,
    worker_id: str,
    progress: ProgressCallback | None = None,
    allow_mass_delete: bool | None = None,
    force: bool = False,
) -> tuple[IndexReport, Run | None]:
    """Index the cabinet of a run this worker claimed, beating its heartbeat meanwhile.

    Records success; failures propagate to the caller, who knows whether a retry follows.
    Returns the report and the follow-up run, if one was requested during this one.
    """
    latest: list[int | None] = [0, None]

    def on_progress(done: int, total: int | None) -> None:
        latest[:] = [done, total]
        if progress is not None:
            progress(done, total)

    async def beat() -> None:
        while True:
            await asyncio.sleep(rt.settings.heartbeat_interval_s)
            done, total = latest
            try:
                await ledger.heartbeat(run.id, worker_id=worker_id, done=done or 0, total=total)
            except Exception:
                log.warning("run %s: heartbeat failed", run.id, exc_info=True)

    log.info("run %s: cabinet %s, attempt %s", run.id, run.cabinet_id, run.attempt)
    beating = asyncio.create_task(beat())
    try:
        report = await rt.indexer.index_cabinet(
            run.cabinet_id, progress=on_progress, allow_mass_delete=allow_mass_delete, force=force
        )
    except Exception as exc:
        if not isinstance(exc, RagIndexerError) and is_connection_error(exc):
            raise DatabaseUnavailable(
                f"service database unreachable during run: {short_error(exc)}"
            ) from exc
        raise
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
    follow_up = await ledger.succeed(run.id, report, worker_id=worker_id)
    return report, follow_up


async def run_inline(
    rt: Runtime,
    cabinet_id: int,
    *,
    progress: ProgressCallback | None = None,
    allow_mass_delete: bool = False,
    force: bool = False,
) -> tuple[Run, IndexReport]:
    """Index a cabinet in this process as a `cli` run in the ledger (no broker needed).

    Claims the cabinet's queued run if there is one (its message will then be a no-op);
    refuses if another process is running it. A follow-up requested meanwhile runs here too.
    """
    ledger = Ledger(rt.db.engine)
    worker_id = f"cli:{socket.gethostname()}:{os.getpid()}"
    run, _ = await ledger.request(cabinet_id, "cli", QUEUE_MANUAL)
    while True:
        claimed = await ledger.start_attempt(
            run.id, worker_id=worker_id, stale_after_s=rt.settings.stale_run_after_s
        )
        if claimed is None:
            raise CabinetBusy(cabinet_id)
        try:
            report, follow_up = await execute_claimed_run(
                rt,
                ledger,
                claimed,
                worker_id=worker_id,
                progress=progress,
                allow_mass_delete=allow_mass_delete or None,
                force=force,
            )
        except BaseException as exc:
            error = describe_error(exc, time_limit_s=rt.settings.run_time_limit_s)
            await ledger.fail(claimed.id, error, retrying=False, worker_id=worker_id)
            raise
        if follow_up is None:
            done = await ledger.get(claimed.id)
            assert done is not None
            return done, report
        run = follow_up
