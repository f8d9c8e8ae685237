"""The scheduler process: a cron fan-out that runs once per tick, however many replicas run,
and a reaper that re-drives lost or stalled runs.

    APScheduler (AsyncIOScheduler, this process's loop)
      ├─ fan-out job  (RAG_SCHEDULE_CRON)  → claim the tick in rag_schedule_ticks → FanOut
      └─ reaper job   (RAG_REAPER_INTERVAL_S) → Dispatcher.redrive_stale, resume unfinished ticks

APScheduler cannot coordinate processes; the tick claim in the database does. A tick's identity
is its scheduled time, which every replica computes alike. A tick missed by less than
`RAG_SCHEDULE_MISFIRE_GRACE_S` (the process was down) runs once at start. SIGTERM/SIGINT stop
the fan-out after its current batch and release the tick, so another pass resumes it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from rag_indexer_service.config import Settings
from rag_indexer_service.jobs.broker import build_broker
from rag_indexer_service.jobs.dispatch import Dispatcher, DispatchOptions
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import open_runtime
from rag_indexer_service.scheduling.scheduler import Scheduler

__all__ = ["SHUTDOWN_TIMEOUT_S", "run_scheduler", "serve"]

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 20.0
"""On SIGTERM, how long jobs in flight may take to reach the end of their batch."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextmanager
def _stop_on_signals(scheduler: Scheduler) -> Iterator[asyncio.Event]:
    """SIGTERM/SIGINT set the returned event and stop the jobs; a second one cancels them."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()

    def on_signal(signum: signal.Signals) -> None:
        if scheduler.stopping:
            log.warning("%s again: cancelling jobs in flight", signum.name)
            scheduler.cancel_jobs()
            return
        log.info("%s received: stopping after the current batch", signum.name)
        scheduler.request_stop()
        stopped.set()

    handled = (signal.SIGTERM, signal.SIGINT)
    for signum in handled:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield stopped
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


async def serve(scheduler: Scheduler, stopped: asyncio.Event) -> None:
    """Run the scheduler's jobs on this loop until `stopped` is set, then stop them cleanly.

    `run_scheduler` calls this; an all-in-one process can call it with its own event.
    """
    options = scheduler.options
    now = _utcnow()
    missed = await scheduler.missed_tick(now)
    aps = AsyncIOScheduler(
        event_loop=asyncio.get_running_loop(), timezone=scheduler.trigger.timezone
    )
    aps.add_job(
        scheduler.tick_job,
        scheduler.trigger,
        id="fan-out",
        name="fan-out",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=options.misfire_grace_s,
        **({"next_run_time": missed} if missed is not None else {}),
    )
    aps.add_job(
        scheduler.reaper_job,
        IntervalTrigger(seconds=options.reaper_interval_s),
        id="reaper",
        name="reaper",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=max(1, int(options.reaper_interval_s)),
        next_run_time=now,
    )
    upcoming = scheduler.next_fire_times(3, after=now)
    await scheduler.heartbeats.started(
        scheduler.id, schedule=scheduler.schedule, next_tick_at=upcoming[0] if upcoming else None
    )
    aps.start()
    log.info(
        "scheduler %s started: cron %s; next fire times: %s",
        scheduler.id,
        scheduler.schedule,
        ", ".join(t.isoformat() for t in upcoming) or "none",
    )
    if missed is not None:
        log.warning(
            "tick %s was missed (less than RAG_SCHEDULE_MISFIRE_GRACE_S=%ss ago); running it now",
            missed.isoformat(),
            options.misfire_grace_s,
        )
    try:
        await stopped.wait()
    finally:
        scheduler.request_stop()
        aps.pause()
        await scheduler.wait_for_jobs(SHUTDOWN_TIMEOUT_S)
        aps.shutdown(wait=False)
        await asyncio.sleep(0)  # let the scheduled shutdown run on this loop
        try:
            await scheduler.heartbeats.stopped(scheduler.id)
        except Exception:
            log.warning("could not record the scheduler's stop", exc_info=True)
        log.info("scheduler %s stopped", scheduler.id)


async def _run_once(scheduler: Scheduler, tick_at: dt.datetime | None) -> int:
    report = await scheduler.run_tick(tick_at or _utcnow())
    if report is None:  # another replica serves (or served) this tick: nothing went wrong
        return 0
    if report.error is None and not report.interrupted:
        return 0  # the tick's own "done: ..." line has said what it did
    log.error(
        "the fan-out did not finish: %s (%s of the cabinets seen)",
        report.summary() or "interrupted",
        report.seen,
        extra={"fields": {"event": "tick_unfinished", **report.to_dict()}},
    )
    return 1


async def run_scheduler(
    settings: Settings, *, once: bool = False, tick_at: dt.datetime | None = None
) -> int:
    """The scheduler process (`rag-indexer scheduler [--once [--tick-at T]]`); returns the exit
    status. `--once` serves one tick, `tick_at` (default: now), and exits.

    Needs `RAG_BROKER_URL` (ConfigError otherwise). Every resource is built here, on the loop
    that uses it, and closed on the way out.
    """
    broker = build_broker(settings)
    try:
        async with open_runtime(settings) as rt:
            dispatcher = Dispatcher(
                broker, Ledger(rt.db.engine), DispatchOptions.from_settings(settings)
            )
            scheduler = Scheduler.from_runtime(rt, dispatcher)
            with _stop_on_signals(scheduler) as stopped:
                if once:
                    return await _run_once(scheduler, tick_at)
                await serve(scheduler, stopped)
                return 0
    finally:
        broker.close()
