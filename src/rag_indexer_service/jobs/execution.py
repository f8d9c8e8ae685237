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
from sqlalchemy.exc import DBAPIError

from rag_indexer_service.db.engine import (
    database_errors,
    is_connection_error,
    is_data_error,
    short_error,
)
from rag_indexer_service.errors import (
    BrokerUnavailable,
    CabinetBusy,
    CabinetNotFound,
    DatabaseUnavailable,
    EmbeddingRejected,
    EmbeddingUnavailable,
    PermanentError,
    RagIndexerError,
    SourceQueryError,
    SourceUnavailable,
)
from rag_indexer_service.indexing.indexer import ProgressCallback
from rag_indexer_service.indexing.report import IndexReport
from rag_indexer_service.indexing.storable import storable
from rag_indexer_service.jobs.broker import QUEUE_MANUAL
from rag_indexer_service.runs import Ledger, Run
from rag_indexer_service.runtime import Runtime

__all__ = ["describe_error", "execute_claimed_run", "run_inline", "should_retry"]

log = logging.getLogger(__name__)


def should_retry(retries_so_far: int, exc: BaseException, max_retries: int) -> bool:
    """Retry anything but a permanent error or a value Postgres refused, up to
    `max_retries` times."""
    permanent = isinstance(exc, PermanentError) or is_data_error(exc)
    return not permanent and retries_so_far < max_retries


# The setting to check, by error branch (most specific first).
_HINTS: tuple[tuple[type[RagIndexerError], str], ...] = (
    (SourceUnavailable, "check RAG_SOURCE_DATABASE_URL (or RAG_DATABASE_URL)"),
    (SourceQueryError, "check the queries of RAG_SOURCES_FILE"),
    (DatabaseUnavailable, "check RAG_DATABASE_URL"),
    (EmbeddingUnavailable, "check RAG_OPENAI_BASE_URL and the provider's status"),
    (EmbeddingRejected, "check RAG_OPENAI_API_KEY, RAG_OPENAI_MODEL and RAG_OPENAI_DIMENSIONS"),
    (BrokerUnavailable, "check RAG_BROKER_URL"),
)
_MAX_ERROR_CHARS = 600


def _one_line(text: str) -> str:
    text = storable(text).split("[SQL:", 1)[0].strip()
    line = " ".join(text.split()) or "(no message)"
    return line if len(line) <= _MAX_ERROR_CHARS else line[: _MAX_ERROR_CHARS - 1] + "…"


def describe_error(exc: BaseException, *, cabinet_id: int, time_limit_s: float) -> str:
    """The run's `error` in the ledger and over HTTP: one sentence saying what failed, for
    which cabinet, and which setting to check. Driver text, SQL and parameters stay in the
    log (the callers log `exc` itself)."""
    where = f"cabinet {cabinet_id}"
    if isinstance(exc, TimeLimitExceeded):
        return (
            f"{where}: the attempt ran longer than {time_limit_s:g} s "
            "(RAG_RUN_TIME_LIMIT_S) and was interrupted"
        )
    if isinstance(exc, RagIndexerError):
        text = _one_line(str(exc))
        hint = next((h for cls, h in _HINTS if isinstance(exc, cls)), None)
        if hint is not None and hint.split()[-1] not in text:
            text = f"{text}; {hint}"
        return text if where in text else f"{where}: {text}"
    if is_connection_error(exc):
        return f"{where}: the service database became unreachable; check RAG_DATABASE_URL"
    if is_data_error(exc):
        return f"{where}: Postgres refused a value while writing the index; see the worker log"
    if isinstance(exc, DBAPIError):
        refused = _one_line(short_error(exc))
        return f"{where}: the service database refused a statement: {refused}; see the worker log"
    return f"{where}: unexpected {type(exc).__name__} while indexing; see the worker log"


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
        with database_errors("service database unreachable during run"):
            report = await rt.indexer.index_cabinet(
                run.cabinet_id,
                progress=on_progress,
                allow_mass_delete=allow_mass_delete,
                force=force,
            )
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
    refuses if another process is running it. A follow-up requested meanwhile runs here too,
    and so does the build of the cabinet's search indexes, if one is due (a worker queues it).
    """
    if not await rt.source.cabinet_exists(cabinet_id):
        raise CabinetNotFound(cabinet_id)  # before the ledger: no run, no trace of the id
    ledger = Ledger(rt.db.engine)
    worker_id = f"cli:{socket.gethostname()}:{os.getpid()}"
    run, _ = await ledger.request(cabinet_id, "cli", QUEUE_MANUAL, force=force)
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
                force=force or claimed.forced,
            )
        except BaseException as exc:
            if not isinstance(exc, RagIndexerError):
                log.error("run %s of cabinet %s failed", claimed.id, cabinet_id, exc_info=exc)
            error = describe_error(
                exc, cabinet_id=cabinet_id, time_limit_s=rt.settings.run_time_limit_s
            )
            await ledger.fail(claimed.id, error, retrying=False, worker_id=worker_id)
            raise
        if follow_up is None:
            done = await ledger.get(claimed.id)
            assert done is not None
            await _build_search_indexes(rt, cabinet_id)
            return done, report
        run = follow_up


async def _build_search_indexes(rt: Runtime, cabinet_id: int) -> None:
    # They only speed searches up (a search scans exactly without them): a failed build must
    # not fail the command; the cabinet's next run retries it.
    try:
        await rt.store.refresh_ann_index(cabinet_id)
    except DBAPIError:
        log.warning("cabinet %s: building its search indexes failed", cabinet_id, exc_info=True)
