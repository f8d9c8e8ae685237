"""Dramatiq side: the broker factory, the `index_cabinet` actors, run bookkeeping middleware,
and `Dispatcher`, which turns requests into ledger rows and messages (single and bulk).

Two queues keep a user's click ahead of a 6-hourly sweep: `rag-manual` (actor
`index_cabinet`, priority 0) and `rag-scheduled` (actor `index_cabinet_scheduled`,
priority 10). Both run the same coroutine. A message carries the run id, and `True` after it
for a forced run (one that scans even if the source's fingerprint is unchanged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dramatiq
from dramatiq.asyncio import async_to_sync
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name
from dramatiq.middleware import (
    AgeLimit,
    AsyncIO,
    Middleware,
    Retries,
    ShutdownNotifications,
    TimeLimit,
    TimeLimitExceeded,
)

from rag_indexer_service.config import Settings
from rag_indexer_service.db.engine import is_connection_error, short_error
from rag_indexer_service.errors import (
    BrokerUnavailable,
    CabinetBusy,
    ConfigError,
    DatabaseUnavailable,
    PermanentError,
    RagIndexerError,
)
from rag_indexer_service.indexing.indexer import ProgressCallback
from rag_indexer_service.indexing.report import IndexReport
from rag_indexer_service.redis_enqueue import enqueue_many
from rag_indexer_service.runs import Ledger, Run, Trigger
from rag_indexer_service.runtime import Runtime, open_runtime

__all__ = [
    "ACTOR_MANUAL",
    "ACTOR_SCHEDULED",
    "QUEUE_MANUAL",
    "QUEUE_SCHEDULED",
    "Dispatcher",
    "EnqueueResult",
    "RedriveReport",
    "TriggerResult",
    "WorkerContext",
    "build_broker",
    "execute_claimed_run",
    "queue_for",
    "run_inline",
    "setup_worker",
    "should_retry",
]

log = logging.getLogger(__name__)

QUEUE_MANUAL = "rag-manual"
QUEUE_SCHEDULED = "rag-scheduled"
ACTOR_MANUAL = "index_cabinet"
ACTOR_SCHEDULED = "index_cabinet_scheduled"
_ACTOR_FOR_QUEUE = {QUEUE_MANUAL: ACTOR_MANUAL, QUEUE_SCHEDULED: ACTOR_SCHEDULED}
_SEND_BATCH = 1000


def queue_for(trigger: Trigger) -> str:
    return QUEUE_SCHEDULED if trigger == "schedule" else QUEUE_MANUAL


def should_retry(retries_so_far: int, exc: BaseException, max_retries: int) -> bool:
    """Retry anything but a permanent error, up to `max_retries` times."""
    return not isinstance(exc, PermanentError) and retries_so_far < max_retries


def describe_error(exc: BaseException, settings: Settings) -> str:
    if isinstance(exc, TimeLimitExceeded):
        return f"time limit exceeded: the attempt ran longer than {settings.run_time_limit_s:g} s"
    text = str(exc).strip() or "(no message)"
    return f"{type(exc).__name__}: {text}"


def build_broker(settings: Settings, *, allow_stub: bool = False) -> dramatiq.Broker:
    """A RedisBroker for `RAG_BROKER_URL`, or (all-in-one mode, unit tests) a StubBroker.

    Nothing connects here: redis-py connects on first use.
    """
    middleware: list[Middleware] = [
        AgeLimit(max_age=int(settings.message_max_age_s * 1000)),
        TimeLimit(time_limit=int(settings.run_time_limit_s * 1000)),
        ShutdownNotifications(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=int(settings.retry_min_backoff_s * 1000),
            max_backoff=int(settings.retry_max_backoff_s * 1000),
        ),
        AsyncIO(),
    ]
    broker: dramatiq.Broker
    if settings.broker_url is not None:
        broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=settings.broker_url, middleware=middleware
        )
    elif allow_stub:
        broker = StubBroker(middleware=middleware)
    else:
        raise ConfigError(
            "RAG_BROKER_URL is not set: separate api/worker/scheduler processes need a "
            "shared Redis (e.g. RAG_BROKER_URL=redis://127.0.0.1:6379/0), or use `rag-indexer up`"
        )
    broker.declare_queue(QUEUE_MANUAL)
    broker.declare_queue(QUEUE_SCHEDULED)
    return broker


def _args(run_id: int, force: bool) -> tuple[Any, ...]:
    return (run_id, True) if force else (run_id,)


def _message(run_id: int, queue: str, force: bool = False) -> dramatiq.Message[Any]:
    return dramatiq.Message(
        queue_name=queue,
        actor_name=_ACTOR_FOR_QUEUE[queue],
        args=_args(run_id, force),
        kwargs={},
        options={},
    )


@dataclass(frozen=True, slots=True)
class TriggerResult:
    run: Run
    created: bool

    @property
    def deduplicated(self) -> bool:
        return not self.created


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    requested: int = 0
    enqueued: int = 0
    already_active: int = 0


@dataclass(slots=True)
class RedriveReport:
    resent: int = 0
    recovered: int = 0
    failed: int = 0
    still_queued: int = 0
    run_ids: list[int] = field(default_factory=list)


class Dispatcher:
    """Ledger first, then the broker: a run row is committed before its message is sent."""

    def __init__(self, broker: dramatiq.Broker, ledger: Ledger, settings: Settings) -> None:
        self.broker = broker
        self.ledger = ledger
        self.settings = settings

    # -- sending ---------------------------------------------------------------------------
    def _send_sync(self, runs: Sequence[tuple[int, str]], force: bool) -> list[str | None]:
        """Send one message per `(run_id, queue)`; returns the broker's message keys."""
        if isinstance(self.broker, RedisBroker):
            return self._send_redis_pipeline(self.broker, runs, force)
        keys: list[str | None] = []
        for run_id, queue in runs:
            sent = self.broker.enqueue(_message(run_id, queue, force))
            keys.append(sent.options.get("redis_message_id", sent.message_id))
        return keys

    @staticmethod
    def _send_redis_pipeline(
        broker: RedisBroker, runs: Sequence[tuple[int, str]], force: bool
    ) -> list[str | None]:
        # Dramatiq has no batch enqueue: RedisBroker.enqueue's dispatch call, one round trip.
        calls = [(queue, _ACTOR_FOR_QUEUE[queue], _args(run_id, force)) for run_id, queue in runs]
        return list(enqueue_many(broker, calls))

    async def _send(self, runs: Sequence[tuple[int, str]], *, force: bool = False) -> None:
        if not runs:
            return
        try:
            keys = await asyncio.to_thread(self._send_sync, runs, force)
        except Exception as exc:
            reason = f"could not enqueue: broker unavailable ({type(exc).__name__}: {exc})"
            for run_id, _ in runs:
                await self.ledger.fail(run_id, reason, retrying=False)
            raise BrokerUnavailable(reason) from exc
        await self.ledger.mark_sent([run_id for run_id, _ in runs], keys)

    # -- public API ------------------------------------------------------------------------
    async def trigger(
        self, cabinet_id: int, trigger: Trigger, *, force: bool = False
    ) -> TriggerResult:
        """Request a run of one cabinet (deduplicated) and send it if new.

        `force`: the new run scans even if the source's fingerprint is unchanged (a run that
        was already active is returned as it is).
        """
        queue = queue_for(trigger)
        run, created = await self.ledger.request(cabinet_id, trigger, queue)
        if created:
            await self._send([(run.id, queue)], force=force)
        elif run.status == "queued" and run.queue != queue and queue == QUEUE_MANUAL:
            # A click while the sweep's message waits far back: also send on the fast queue.
            # Whichever message arrives first runs it; the other finds it claimed.
            await self._send([(run.id, queue)])
        return TriggerResult(run=run, created=created)

    async def enqueue_cabinets(self, cabinet_ids: Sequence[int], trigger: Trigger) -> EnqueueResult:
        """Bulk path: batched ledger inserts and pipelined sends."""
        queue = queue_for(trigger)
        enqueued = already = 0
        for start in range(0, len(cabinet_ids), _SEND_BATCH):
            batch = cabinet_ids[start : start + _SEND_BATCH]
            created, active = await self.ledger.request_many_ids(batch, trigger, queue)
            await self._send([(run_id, queue) for run_id in created])
            enqueued += len(created)
            already += active
        return EnqueueResult(requested=len(cabinet_ids), enqueued=enqueued, already_active=already)

    async def send_follow_up(self, run: Run | None) -> None:
        if run is not None:
            await self._send([(run.id, run.queue)])

    def _message_present(self, run: Run) -> bool | None:
        """Does the broker still hold this run's message? None when it cannot tell."""
        if not isinstance(self.broker, RedisBroker) or run.message_key is None:
            return None
        ns = self.broker.namespace
        pipe = self.broker.client.pipeline(transaction=False)
        pipe.hexists(f"{ns}:{run.queue}.msgs", run.message_key)
        pipe.hexists(f"{ns}:{dq_name(run.queue)}.msgs", run.message_key)
        return any(pipe.execute())

    async def redrive_stale(self, *, orphaned: bool = False) -> RedriveReport:
        """Re-send runs whose message was lost; recover runs whose worker stopped beating.

        `orphaned=True` treats every active run as lost at once: for an in-process broker
        at start, when no message and no worker of an earlier process can still exist.
        """
        s = self.settings
        report = RedriveReport()
        stale = await self.ledger.stale_runs(
            queued_after_s=0 if orphaned else s.redrive_queued_after_s,
            stale_after_s=0 if orphaned else s.stale_run_after_s,
            retrying_after_s=0 if orphaned else s.retry_max_backoff_s + s.redrive_queued_after_s,
        )
        to_send: list[tuple[int, str]] = []
        for run in stale:
            if run.status == "queued":
                if await asyncio.to_thread(self._message_present, run):
                    report.still_queued += 1
                    continue
            elif run.status == "running":
                reason = (
                    f"worker {run.worker_id} stopped (no heartbeat for {s.stale_run_after_s:g} s)"
                )
                if run.attempt > s.max_retries:
                    follow_up = await self.ledger.fail(run.id, reason, retrying=False)
                    report.failed += 1
                    await self.send_follow_up(follow_up)
                    continue
                if await self.ledger.requeue_lost(run.id, reason) is None:
                    continue
                report.recovered += 1
            to_send.append((run.id, run.queue))
            report.run_ids.append(run.id)
        await self._send(to_send)
        report.resent = len(to_send)
        if stale:
            log.info("redrive: %s", report)
        return report


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
            await ledger.fail(
                claimed.id, describe_error(exc, rt.settings), retrying=False, worker_id=worker_id
            )
            raise
        if follow_up is None:
            done = await ledger.get(claimed.id)
            assert done is not None
            return done, report
        run = follow_up


class WorkerContext:
    """Per-process resources of a worker, opened lazily on the worker's event loop."""

    def __init__(self, settings: Settings, broker: dramatiq.Broker) -> None:
        self.settings = settings
        self.broker = broker
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._runtime: Runtime | None = None
        self._closer: Any = None
        self._lock: asyncio.Lock | None = None

    async def runtime(self) -> Runtime:
        if self._runtime is None:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if self._runtime is None:
                    manager = open_runtime(self.settings)
                    self._runtime = await manager.__aenter__()
                    self._closer = manager
        return self._runtime

    async def dispatcher(self) -> Dispatcher:
        return Dispatcher(self.broker, Ledger((await self.runtime()).db.engine), self.settings)

    async def close(self) -> None:
        if self._closer is not None:
            await self._closer.__aexit__(None, None, None)
            self._runtime = self._closer = None

    async def run(self, run_id: int, force: bool = False) -> None:
        """The actor body: claim the run, index with heartbeats, record success."""
        try:
            rt = await self.runtime()
        except Exception as exc:
            if not isinstance(exc, RagIndexerError) and is_connection_error(exc):
                raise DatabaseUnavailable(
                    f"service database unreachable: {short_error(exc)}"
                ) from exc
            raise
        ledger = Ledger(rt.db.engine)
        run = await ledger.start_attempt(
            run_id, worker_id=self.worker_id, stale_after_s=self.settings.stale_run_after_s
        )
        if run is None:
            log.info("run %s is finished or owned by a live worker; dropping message", run_id)
            return
        _, follow_up = await execute_claimed_run(
            rt, ledger, run, worker_id=self.worker_id, force=force
        )
        await (await self.dispatcher()).send_follow_up(follow_up)

    async def record_failure(self, run_id: int, exc: BaseException, retrying: bool) -> None:
        rt = await self.runtime()
        ledger = Ledger(rt.db.engine)
        follow_up = await ledger.fail(
            run_id, describe_error(exc, self.settings), retrying=retrying, worker_id=self.worker_id
        )
        await (await self.dispatcher()).send_follow_up(follow_up)

    async def record_expired(self, run_id: int) -> None:
        rt = await self.runtime()
        reason = f"message expired: waited longer than {self.settings.message_max_age_s:g} s"
        await Ledger(rt.db.engine).fail(run_id, reason, retrying=False)


class RunBookkeeping(Middleware):
    """Records failed attempts and expired messages in the ledger (success is the actor's)."""

    def __init__(self, context: WorkerContext) -> None:
        self.context = context

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None or message.actor_name not in (ACTOR_MANUAL, ACTOR_SCHEDULED):
            return
        run_id = int(message.args[0])
        retries = int(message.options.get("retries", 0))
        retrying = should_retry(retries, exception, self.context.settings.max_retries)
        level = logging.INFO if retrying else logging.ERROR
        log.log(level, "run %s attempt failed (%s); retrying=%s", run_id, exception, retrying)
        try:
            async_to_sync(self.context.record_failure)(run_id, exception, retrying)
        except Exception:
            log.exception("run %s: could not record the failure; the reaper will", run_id)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if message.actor_name in (ACTOR_MANUAL, ACTOR_SCHEDULED):
            try:
                async_to_sync(self.context.record_expired)(int(message.args[0]))
            except Exception:
                log.exception("could not record expired message %s", message.message_id)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        try:
            async_to_sync(self.context.close)()
        except Exception:
            log.warning("closing worker resources failed", exc_info=True)


def setup_worker(broker: dramatiq.Broker, settings: Settings) -> WorkerContext:
    """Declare the actors on `broker` and add the bookkeeping middleware."""
    context = WorkerContext(settings, broker)
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
        )(index_cabinet)
    return context
