"""`Scheduler`: the jobs of one scheduler process, callable directly (tests, `--once`) or by
APScheduler (`daemon.py`).

* the fan-out job claims the current tick in `rag_schedule_ticks` and runs `FanOut`; a tick's
  identity is its scheduled time, which every replica computes alike, so of any number of
  replicas exactly one fans out;
* the reaper job re-drives lost and stalled runs (`Dispatcher.redrive_stale`, one replica at a
  time) and resumes a tick whose fan-out stopped half-way;
* both refresh this process's row in `rag_scheduler_heartbeats`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from rag_indexer_service.config import Settings
from rag_indexer_service.cron import crontab_trigger, next_fire_times, previous_fire_time
from rag_indexer_service.db.engine import is_connection_error, short_error
from rag_indexer_service.db.locks import try_advisory_lock
from rag_indexer_service.errors import RagIndexerError, TransientError
from rag_indexer_service.jobs.dispatch import Dispatcher, RedriveReport
from rag_indexer_service.runtime import Runtime
from rag_indexer_service.scheduling.fanout import FanOut
from rag_indexer_service.scheduling.heartbeats import Heartbeats
from rag_indexer_service.scheduling.report import FanOutReport
from rag_indexer_service.scheduling.ticks import TickClaims

__all__ = [
    "ALL_IN_ONE_PREFIX",
    "Scheduler",
    "SchedulerOptions",
    "all_in_one_alive",
    "default_scheduler_id",
]

log = logging.getLogger(__name__)

_REAPER_LOCK = "rag-indexer:reaper"
_RECORD_EVERY_S = 1.0  # progress and claim heartbeat of a running fan-out


ALL_IN_ONE_PREFIX = "up:"
"""The scheduler of `rag-indexer up` is `up:host:pid`: a live one takes ledger-only runs."""


def default_scheduler_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def all_in_one_alive(engine: AsyncEngine, *, silent_after_s: float) -> bool:
    """Does a `rag-indexer up` beat (within `silent_after_s`) on this database?"""
    beats = await Heartbeats(engine).list(silent_after_s=silent_after_s)
    return any(b.alive and b.scheduler_id.startswith(ALL_IN_ONE_PREFIX) for b in beats)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class SchedulerOptions:
    schedule_cron: str = "0 */6 * * *"
    schedule_timezone: str = "UTC"
    misfire_grace_s: int = 3600
    """A tick missed by less than this is still run (late), and an unfinished one resumed."""
    stale_run_after_s: float = 120.0
    """A tick claim without heartbeat for this long may be taken over."""
    reaper_interval_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SchedulerOptions:
        return cls(
            schedule_cron=settings.schedule_cron,
            schedule_timezone=settings.schedule_timezone,
            misfire_grace_s=settings.schedule_misfire_grace_s,
            stale_run_after_s=settings.stale_run_after_s,
            reaper_interval_s=settings.reaper_interval_s,
        )


class Scheduler:
    """The jobs of one scheduler process, callable directly (tests, `--once`) or by APScheduler."""

    def __init__(
        self,
        *,
        options: SchedulerOptions,
        engine: AsyncEngine,
        fan_out: FanOut,
        dispatcher: Dispatcher,
        scheduler_id: str | None = None,
    ) -> None:
        self.options = options
        self.trigger = crontab_trigger(options.schedule_cron, options.schedule_timezone)
        self.id = scheduler_id or default_scheduler_id()
        self.claims = TickClaims(engine)
        self.heartbeats = Heartbeats(engine)
        self.fan_out = fan_out
        self.dispatcher = dispatcher
        self._engine = engine
        self._stopping = False
        self._jobs: set[asyncio.Task[Any]] = set()

    @classmethod
    def from_runtime(
        cls, rt: Runtime, dispatcher: Dispatcher, *, scheduler_id: str | None = None
    ) -> Scheduler:
        return cls(
            options=SchedulerOptions.from_settings(rt.settings),
            engine=rt.db.engine,
            fan_out=FanOut.from_runtime(rt, dispatcher),
            dispatcher=dispatcher,
            scheduler_id=scheduler_id,
        )

    @property
    def schedule(self) -> str:
        return f"{self.options.schedule_cron} ({self.options.schedule_timezone})"

    @property
    def stopping(self) -> bool:
        return self._stopping

    def request_stop(self) -> None:
        """Make running fan-outs stop after their current batch; start no new work."""
        self._stopping = True

    def next_fire_times(
        self, count: int = 3, *, after: dt.datetime | None = None
    ) -> list[dt.datetime]:
        return next_fire_times(self.trigger, count, after=after or _utcnow())

    def tick_for(self, now: dt.datetime) -> dt.datetime:
        """The tick a fan-out job running at `now` serves (the latest fire time within grace)."""
        grace_s = self.options.misfire_grace_s
        tick_at = previous_fire_time(self.trigger, now=now, within_s=grace_s)
        if tick_at is None:
            log.warning("no fire time within %ss before %s; using the current time", grace_s, now)
            return now.replace(microsecond=0)
        return tick_at

    # -- ticks -----------------------------------------------------------------------------
    async def run_tick(self, tick_at: dt.datetime) -> FanOutReport | None:
        """Claim the tick and fan out; None if another scheduler has (or had) it."""
        when = tick_at.isoformat()
        if not await self.claims.claim(
            tick_at, self.id, stale_after_s=self.options.stale_run_after_s
        ):
            tick = await self.claims.get(tick_at)
            owner = tick.claimed_by if tick else "another scheduler"
            log.info("tick %s: claimed by %s; nothing to do here", when, owner)
            return None
        log.info("tick %s: claimed by %s; fanning out", when, self.id)
        report = FanOutReport()
        recorded_at = time.monotonic()

        async def checkpoint(progress: FanOutReport) -> bool:
            nonlocal recorded_at
            if self._stopping:
                progress.error = f"interrupted by shutdown after {progress.seen} cabinets"
                return False
            if time.monotonic() - recorded_at < _RECORD_EVERY_S:
                return True
            recorded_at = time.monotonic()
            if await self.claims.record(tick_at, self.id, progress):
                return True
            log.warning("tick %s: another scheduler took the claim over; stopping here", when)
            return False

        try:
            await self.fan_out.run(report, checkpoint=checkpoint)
        except BaseException as exc:
            await self._record_failure(tick_at, report, exc)
            if not isinstance(exc, Exception):
                raise
            return report
        if report.interrupted:
            await self.claims.release(tick_at, self.id, report)
            log.info("tick %s: stopped after %s cabinets; it will be resumed", when, report.seen)
        else:
            await self.claims.finish(tick_at, self.id, report)
            log.info(
                "tick %s: done: %s seen, %s queued, %s skipped as unchanged, %s already active, "
                "%s purged in %.2f s%s",
                when,
                report.seen,
                report.enqueued,
                report.skipped,
                report.already_active,
                report.purged,
                report.duration_s,
                f"; {report.summary()}" if report.summary() else "",
                extra={"fields": {"event": "tick_done", "tick_at": when, **report.to_dict()}},
            )
        return report

    async def _record_failure(
        self, tick_at: dt.datetime, report: FanOutReport, exc: BaseException
    ) -> None:
        # Only the outside world failing is worth a resumed tick; anything else (a broken
        # sources file, a bug) would fail the same way on every reaper pass.
        transient = isinstance(exc, TransientError | asyncio.CancelledError) or (
            not isinstance(exc, RagIndexerError) and is_connection_error(exc)
        )
        permanent = not transient
        if isinstance(exc, asyncio.CancelledError):
            report.error = "cancelled"
        elif isinstance(exc, RagIndexerError):
            report.error = str(exc)
        else:
            report.error = f"{type(exc).__name__}: {short_error(exc)}"
        log.error(
            "tick %s: fan-out failed after %s cabinets: %s (%s)",
            tick_at.isoformat(),
            report.seen,
            report.error,
            "not retried: fix the cause" if permanent else "it will be resumed",
        )
        try:
            if permanent:
                await self.claims.finish(tick_at, self.id, report)
            else:
                await self.claims.release(tick_at, self.id, report)
        except Exception:
            log.warning("tick %s: could not record the failure", tick_at.isoformat(), exc_info=True)

    async def missed_tick(self, now: dt.datetime) -> dt.datetime | None:
        """The latest tick within the misfire grace if nobody claimed it (we were all down)."""
        tick_at = previous_fire_time(self.trigger, now=now, within_s=self.options.misfire_grace_s)
        if tick_at is None or await self.claims.get(tick_at) is not None:
            return None
        return tick_at

    async def resume_unfinished(self) -> FanOutReport | None:
        """Resume the latest tick whose fan-out stopped half-way (owner died or shut down)."""
        tick_at = await self.claims.resumable(
            within_s=self.options.misfire_grace_s,
            stale_after_s=self.options.stale_run_after_s,
        )
        if tick_at is None:
            return None
        log.warning("tick %s was left unfinished; resuming it", tick_at.isoformat())
        return await self.run_tick(tick_at)

    # -- reaper ----------------------------------------------------------------------------
    async def reap(self) -> RedriveReport | None:
        """Re-drive lost and stalled runs; None if another scheduler is reaping right now."""
        async with try_advisory_lock(self._engine, _REAPER_LOCK) as got:
            if not got:
                log.debug("another scheduler is reaping; skipping this pass")
                return None
            return await self.dispatcher.redrive_stale()

    # -- APScheduler jobs ------------------------------------------------------------------
    @contextmanager
    def _tracked(self) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self._jobs.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._jobs.discard(task)

    async def _beat(self, **recorded: Any) -> None:
        upcoming = self.next_fire_times(1)
        try:
            await self.heartbeats.beat(
                self.id, next_tick_at=upcoming[0] if upcoming else None, **recorded
            )
        except Exception:
            log.warning("could not write the scheduler heartbeat", exc_info=True)

    async def tick_job(self) -> None:
        if self._stopping:
            return
        with self._tracked():
            tick_at = self.tick_for(_utcnow())
            try:
                await self.run_tick(tick_at)
            except Exception:
                log.exception("tick %s failed", tick_at.isoformat())
            await self._beat(last_tick_at=tick_at)

    async def reaper_job(self) -> None:
        if self._stopping:
            return
        with self._tracked():
            summary: dict[str, Any]
            try:
                report = await self.reap()
                summary = (
                    {"skipped": "another scheduler was reaping"}
                    if report is None
                    else {**dataclasses.asdict(report), "run_ids": report.run_ids[:20]}
                )
            except Exception as exc:
                log.exception("reaper pass failed")
                # Shown by `status` and the API: the driver's line, no SQL or parameters.
                summary = {"error": f"{type(exc).__name__}: {short_error(exc)}"[:500]}
            await self._beat(reaper=summary)
            if not self._stopping:
                try:
                    await self.resume_unfinished()
                except Exception:
                    log.exception("resuming an unfinished tick failed")

    async def wait_for_jobs(self, timeout_s: float) -> None:
        """Wait for jobs in flight (they stop at their next batch), then cancel the rest."""
        pending = {task for task in self._jobs if not task.done()}
        if not pending:
            return
        log.info("waiting up to %ss for %s job(s) to finish their batch", timeout_s, len(pending))
        _, pending = await asyncio.wait(pending, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)

    def cancel_jobs(self) -> None:
        for task in self._jobs:
            task.cancel()
