"""`Dispatcher`: turns run requests into ledger rows and broker messages, and re-drives lost ones.

Ledger first, then the broker: a run row is committed before its message is sent, so a lost
message leaves a queued row that `redrive_stale()` re-sends. A message carries only the run
id; everything else about the run (a forced scan, say) is in its ledger row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from rag_indexer_service.config import Settings
from rag_indexer_service.errors import BrokerUnavailable
from rag_indexer_service.jobs.broker import ACTOR_FOR_QUEUE, QUEUE_MANUAL, queue_for
from rag_indexer_service.jobs.redis_fast_path import enqueue_many, message_present, uses_fast_path
from rag_indexer_service.runs import Ledger, Run, Trigger

__all__ = ["DispatchOptions", "Dispatcher", "EnqueueResult", "RedriveReport", "TriggerResult"]

log = logging.getLogger(__name__)

_SEND_BATCH = 1000


@dataclass(frozen=True, slots=True)
class DispatchOptions:
    """When a run counts as lost, and how many attempts a run gets."""

    redrive_queued_after_s: float
    stale_run_after_s: float
    retry_max_backoff_s: float
    max_retries: int

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatchOptions:
        return cls(
            redrive_queued_after_s=settings.redrive_queued_after_s,
            stale_run_after_s=settings.stale_run_after_s,
            retry_max_backoff_s=settings.retry_max_backoff_s,
            max_retries=settings.max_retries,
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


def _message(run_id: int, queue: str) -> dramatiq.Message[Any]:
    return dramatiq.Message(
        queue_name=queue,
        actor_name=ACTOR_FOR_QUEUE[queue],
        args=(run_id,),
        kwargs={},
        options={},
    )


class Dispatcher:
    """Ledger first, then the broker: a run row is committed before its message is sent."""

    def __init__(self, broker: dramatiq.Broker, ledger: Ledger, options: DispatchOptions) -> None:
        self.broker = broker
        self.ledger = ledger
        self.options = options

    # -- sending ---------------------------------------------------------------------------
    def _send_sync(self, runs: Sequence[tuple[int, str]]) -> list[str | None]:
        """Send one message per `(run_id, queue)`; returns the broker's message keys."""
        if uses_fast_path(self.broker):
            calls = [(queue, ACTOR_FOR_QUEUE[queue], (run_id,)) for run_id, queue in runs]
            return list(enqueue_many(self.broker, calls))
        keys: list[str | None] = []
        for run_id, queue in runs:
            sent = self.broker.enqueue(_message(run_id, queue))
            keys.append(sent.options.get("redis_message_id", sent.message_id))
        return keys

    async def _send(self, runs: Sequence[tuple[int, str]], *, fail_unsent: bool = True) -> None:
        """Send the runs' messages. If the broker refuses, a run someone is waiting on
        (`fail_unsent`) fails at once, so its requester can ask again; a run nobody waits on
        (a follow-up, a re-drive) stays active for the reaper to re-send."""
        if not runs:
            return
        try:
            keys = await asyncio.to_thread(self._send_sync, runs)
        except Exception as exc:
            reason = f"could not enqueue: broker unavailable ({type(exc).__name__}: {exc})"
            if fail_unsent:
                for run_id, _ in runs:
                    await self.ledger.fail(run_id, reason, retrying=False)
            raise BrokerUnavailable(reason) from exc
        await self.ledger.mark_sent([run_id for run_id, _ in runs], keys)

    # -- public API ------------------------------------------------------------------------
    async def send_unsent(self, *, older_than_s: float) -> int:
        """Send the queued runs that have no message yet; returns how many."""
        runs = await self.ledger.unsent(older_than_s=older_than_s)
        await self._send([(run.id, run.queue) for run in runs], fail_unsent=False)
        return len(runs)

    async def trigger(
        self, cabinet_id: int, trigger: Trigger, *, force: bool = False
    ) -> TriggerResult:
        """Request a run of one cabinet (deduplicated) and send it if new.

        `force`: the run scans even if the source's fingerprint is unchanged (recorded in the
        ledger, so a re-sent or recovered run keeps it; a run already running is not forced).
        """
        queue = queue_for(trigger)
        run, created = await self.ledger.request(cabinet_id, trigger, queue, force=force)
        if created:
            await self._send([(run.id, queue)])
        elif run.status == "queued" and run.queue != queue and queue == QUEUE_MANUAL:
            # A click while the sweep's message waits far back: also send on the fast queue.
            # Whichever message arrives first runs it; the other finds it claimed.
            await self._send([(run.id, queue)])
        return TriggerResult(run=run, created=created)

    async def enqueue_cabinets(
        self, cabinet_ids: Sequence[int], trigger: Trigger, *, force: bool = False
    ) -> EnqueueResult:
        """Bulk path: batched ledger inserts and pipelined sends (`force`: the new runs are
        forced, and so are the active ones, as `trigger` forces them)."""
        queue = queue_for(trigger)
        enqueued = already = 0
        for start in range(0, len(cabinet_ids), _SEND_BATCH):
            batch = cabinet_ids[start : start + _SEND_BATCH]
            created, active = await self.ledger.request_many_ids(batch, trigger, queue, force=force)
            await self._send([(run_id, queue) for run_id in created])
            enqueued += len(created)
            already += active
        return EnqueueResult(requested=len(cabinet_ids), enqueued=enqueued, already_active=already)

    async def send_follow_up(self, run: Run | None) -> None:
        if run is None:
            return
        try:
            await self._send([(run.id, run.queue)], fail_unsent=False)
        except BrokerUnavailable as exc:
            log.warning("follow-up run %s stays queued for the reaper to send: %s", run.id, exc)

    def _message_present(self, run: Run) -> bool | None:
        """Does the broker still hold this run's message? None when it cannot tell."""
        if not isinstance(self.broker, RedisBroker) or run.message_key is None:
            return None
        return message_present(self.broker, run.queue, run.message_key)

    async def redrive_stale(self, *, orphaned: bool = False) -> RedriveReport:
        """Re-send runs whose message was lost; recover runs whose worker stopped beating.

        `orphaned=True` treats every active run as lost at once: for an in-process broker
        at start, when no message and no worker of an earlier process can still exist.
        """
        o = self.options
        report = RedriveReport()
        stale = await self.ledger.stale_runs(
            queued_after_s=0 if orphaned else o.redrive_queued_after_s,
            stale_after_s=0 if orphaned else o.stale_run_after_s,
            retrying_after_s=0 if orphaned else o.retry_max_backoff_s + o.redrive_queued_after_s,
        )
        to_send: list[tuple[int, str]] = []
        for run in stale:
            if run.status == "queued":
                if await asyncio.to_thread(self._message_present, run):
                    report.still_queued += 1
                    continue
            elif run.status == "running":
                reason = (
                    f"worker {run.worker_id} stopped (no heartbeat for {o.stale_run_after_s:g} s)"
                )
                if run.attempt > o.max_retries:
                    follow_up = await self.ledger.fail(run.id, reason, retrying=False)
                    report.failed += 1
                    await self.send_follow_up(follow_up)
                    continue
                if await self.ledger.requeue_lost(run.id, reason) is None:
                    continue
                report.recovered += 1
            to_send.append((run.id, run.queue))
            report.run_ids.append(run.id)
        await self._send(to_send, fail_unsent=False)
        report.resent = len(to_send)
        if stale:
            log.info(
                "stale runs: %s re-sent%s (%s of them from a stopped worker), %s failed for good "
                "(no attempts left), %s still queued with their message",
                report.resent,
                f" (runs {', '.join(map(str, report.run_ids[:20]))})" if report.run_ids else "",
                report.recovered,
                report.failed,
                report.still_queued,
                extra={"fields": {"event": "redrive", **asdict(report)}},
            )
        return report
