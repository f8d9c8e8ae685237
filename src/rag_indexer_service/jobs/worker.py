"""The worker side: `setup_worker()` declares the actors, `WorkerContext` holds a process's
resources, and the `RunBookkeeping` middleware records failed attempts and expired messages."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any

import dramatiq
from dramatiq.asyncio import async_to_sync
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from rag_indexer_service.config import Settings
from rag_indexer_service.db.embedded import leave_embedded_postgres
from rag_indexer_service.db.engine import database_errors
from rag_indexer_service.errors import PermanentError, RagIndexerError
from rag_indexer_service.jobs.broker import (
    ACTOR_INDEXES,
    ACTOR_MANUAL,
    ACTOR_SCHEDULED,
    QUEUE_INDEXES,
    QUEUE_MANUAL,
    QUEUE_SCHEDULED,
)
from rag_indexer_service.jobs.dispatch import Dispatcher, DispatchOptions
from rag_indexer_service.jobs.execution import describe_error, execute_claimed_run, should_retry
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime, open_runtime

__all__ = [
    "LeaveEmbeddedPostgres",
    "RunBookkeeping",
    "WorkerContext",
    "WorkerOptions",
    "setup_worker",
]

log = logging.getLogger(__name__)

RuntimeOpener = Callable[[], AbstractAsyncContextManager[Runtime]]

BUILD_BUSY_DELAY_S = 5.0
"""A search index build that finds another under way is sent again this much later."""


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """Limits a worker reports failures against, and what its follow-up sends need."""

    message_max_age_s: float
    run_time_limit_s: float
    dispatch: DispatchOptions

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerOptions:
        return cls(
            message_max_age_s=settings.message_max_age_s,
            run_time_limit_s=settings.run_time_limit_s,
            dispatch=DispatchOptions.from_settings(settings),
        )


class WorkerContext:
    """Per-process resources of a worker, opened lazily on the worker's event loop."""

    def __init__(
        self, options: WorkerOptions, broker: dramatiq.Broker, open_runtime: RuntimeOpener
    ) -> None:
        self.options = options
        self.broker = broker
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._open_runtime = open_runtime
        self._runtime: Runtime | None = None
        self._closer: AbstractAsyncContextManager[Runtime] | None = None
        self._lock: asyncio.Lock | None = None
        # run id -> attempt this process claimed, while its message is processed
        self.claims: dict[int, int] = {}
        # run id -> (worker id, attempt) of an ended attempt a retry message may take over
        self.ended: dict[int, tuple[str, int]] = {}

    async def runtime(self) -> Runtime:
        if self._runtime is None:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if self._runtime is None:
                    manager = self._open_runtime()
                    self._runtime = await manager.__aenter__()
                    self._closer = manager
        return self._runtime

    async def dispatcher(self) -> Dispatcher:
        ledger = Ledger((await self.runtime()).db.engine)
        return Dispatcher(self.broker, ledger, self.options.dispatch)

    async def close(self) -> None:
        if self._closer is not None:
            await self._closer.__aexit__(None, None, None)
            self._runtime = self._closer = None

    async def run(self, run_id: int, force: bool = False) -> None:
        """The actor body: claim the run, index with heartbeats, record success. `force`
        honours messages sent before the ledger recorded forced runs (`rag_runs.forced`)."""
        with database_errors("service database unreachable"):
            rt = await self.runtime()
        ledger = Ledger(rt.db.engine)
        run = await ledger.start_attempt(
            run_id,
            worker_id=self.worker_id,
            stale_after_s=self.options.dispatch.stale_run_after_s,
            ended=self.ended.pop(run_id, None),
        )
        if run is None:
            log.info("run %s is finished or owned by a live worker; dropping message", run_id)
            return
        self.claims[run_id] = run.attempt
        _, follow_up = await execute_claimed_run(
            rt, ledger, run, worker_id=self.worker_id, force=force or run.forced
        )
        await (await self.dispatcher()).send_follow_up(follow_up)
        await self.send_index_build(run.cabinet_id)

    async def send_index_build(self, cabinet_id: int) -> None:
        """Queue the build of the cabinet's search indexes if it has one due (one that failed
        or was lost is due again after the cabinet's next run)."""
        rt = await self.runtime()
        try:
            if (await rt.store.search_index_state(cabinet_id)).build_due:
                await self._enqueue_build(cabinet_id)
        except Exception:
            log.warning(
                "cabinet %s: could not queue its search index build; its next run will",
                cabinet_id,
                exc_info=True,
            )

    async def build_indexes(self, cabinet_id: int) -> None:
        """The index actor's body: build what is due (`IndexStore.refresh_ann_index`). While
        another build has the service's turn, it comes back later instead of holding one of
        the worker's threads (which runs need) waiting."""
        with database_errors("service database unreachable"):
            rt = await self.runtime()
        built = await rt.store.refresh_ann_index(cabinet_id, wait=False)
        if built is None:
            await self._enqueue_build(cabinet_id, delay_s=BUILD_BUSY_DELAY_S)
            return
        log.info("cabinet %s: search indexes up to date (built: generations %s)", cabinet_id, built)

    async def _enqueue_build(self, cabinet_id: int, *, delay_s: float | None = None) -> None:
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=QUEUE_INDEXES,
            actor_name=ACTOR_INDEXES,
            args=(cabinet_id,),
            kwargs={},
            options={},
        )
        delay_ms = None if delay_s is None else int(delay_s * 1000)
        await asyncio.to_thread(self.broker.enqueue, message, delay=delay_ms)

    async def record_failure(self, run_id: int, exc: BaseException, retrying: bool) -> None:
        rt = await self.runtime()
        ledger = Ledger(rt.db.engine)
        run = await ledger.get(run_id)
        if run is None:
            return
        error = describe_error(
            exc, cabinet_id=run.cabinet_id, time_limit_s=self.options.run_time_limit_s
        )
        follow_up = await ledger.fail(run_id, error, retrying=retrying, worker_id=self.worker_id)
        await (await self.dispatcher()).send_follow_up(follow_up)

    async def record_expired(self, run_id: int) -> None:
        rt = await self.runtime()
        reason = f"message expired: waited longer than {self.options.message_max_age_s:g} s"
        await Ledger(rt.db.engine).fail(run_id, reason, retrying=False)


_ENDED_ATTEMPT = "rag_ended_attempt"


class RunBookkeeping(Middleware):
    """Records failed attempts and expired messages in the ledger (success is the actor's).

    A failed attempt's message carries `(worker id, attempt)` into its Dramatiq retry (this
    hook runs before `Retries` re-enqueues it), so the retry can take the run over even when
    the failure could not be recorded (database restarting). Resources are closed only after
    the in-flight runs have finished.
    """

    def __init__(self, context: WorkerContext) -> None:
        self.context = context

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        ended = message.options.get(_ENDED_ATTEMPT)
        if message.actor_name in (ACTOR_MANUAL, ACTOR_SCHEDULED) and ended is not None:
            self.context.ended[int(message.args[0])] = (str(ended[0]), int(ended[1]))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if message.actor_name not in (ACTOR_MANUAL, ACTOR_SCHEDULED):
            return
        run_id = int(message.args[0])
        attempt = self.context.claims.pop(run_id, None)
        if exception is None:
            return
        if attempt is not None:
            message.options[_ENDED_ATTEMPT] = [self.context.worker_id, attempt]
        retries = int(message.options.get("retries", 0))
        retrying = should_retry(retries, exception, self.context.options.dispatch.max_retries)
        level = logging.INFO if retrying else logging.ERROR
        log.log(
            level,
            "run %s attempt failed (%s); retrying=%s",
            run_id,
            exception,
            retrying,
            exc_info=None if isinstance(exception, RagIndexerError) else exception,
        )
        try:
            async_to_sync(self.context.record_failure)(run_id, exception, retrying)
        except Exception:
            log.exception(
                "run %s: could not record the failure; the reaper takes the run over", run_id
            )

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if message.actor_name in (ACTOR_MANUAL, ACTOR_SCHEDULED):
            try:
                async_to_sync(self.context.record_expired)(int(message.args[0]))
            except Exception:
                log.exception("could not record expired message %s", message.message_id)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        # After the worker threads have finished their runs; before AsyncIO (which comes
        # earlier in the middleware list, so later here) stops the event loop.
        try:
            async_to_sync(self.context.close)()
        except Exception:
            log.warning("closing worker resources failed", exc_info=True)


class LeaveEmbeddedPostgres(Middleware):
    """Leaves the embedded Postgres when a worker process Dramatiq forked shuts down: that
    process ends through `os._exit`, without `atexit`. Add it before `RunBookkeeping`, so it
    runs after the bookkeeping closed the connections (`after_*` hooks run in reverse)."""

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        try:
            leave_embedded_postgres()
        except Exception:
            log.warning("leaving the embedded Postgres failed", exc_info=True)


class _OneLinePerAttempt(logging.Filter):
    """Drops Dramatiq's traceback for a failed attempt whose error is one of ours: the
    bookkeeping has logged it as one line already. Anything else keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, RagIndexerError)


def setup_worker(broker: dramatiq.Broker, settings: Settings) -> WorkerContext:
    """Declare the actors on `broker` and add the bookkeeping middleware."""
    worker_log = logging.getLogger("dramatiq.worker.WorkerThread")
    if not any(isinstance(f, _OneLinePerAttempt) for f in worker_log.filters):
        worker_log.addFilter(_OneLinePerAttempt())
    context = WorkerContext(
        WorkerOptions.from_settings(settings), broker, partial(open_runtime, settings)
    )
    broker.add_middleware(RunBookkeeping(context))
    max_retries = settings.max_retries

    def retry_when(retries: int, exc: BaseException) -> bool:
        return should_retry(retries, exc, max_retries)

    async def index_cabinet(run_id: int, force: bool = False) -> None:
        await context.run(run_id, force)

    for name, queue, priority in (
        (ACTOR_MANUAL, QUEUE_MANUAL, 0),
        (ACTOR_SCHEDULED, QUEUE_SCHEDULED, 10),
    ):
        dramatiq.actor(
            actor_name=name,
            queue_name=queue,
            priority=priority,
            broker=broker,
            retry_when=retry_when,
            throws=(PermanentError,),  # never retried: Dramatiq logs them without a traceback
        )(index_cabinet)

    async def build_search_indexes(cabinet_id: int) -> None:
        await context.build_indexes(cabinet_id)

    dramatiq.actor(
        actor_name=ACTOR_INDEXES,
        queue_name=QUEUE_INDEXES,
        priority=20,
        broker=broker,
        retry_when=retry_when,
    )(build_search_indexes)
    return context
