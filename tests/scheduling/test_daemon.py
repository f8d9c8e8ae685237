"""The scheduler's jobs called directly: the reaper re-drives a run whose message was lost,
a tick missed while every scheduler was down is caught up once, heartbeats feed the status."""

from __future__ import annotations

import asyncio
import datetime as dt

import asyncpg
import dramatiq
from sqlalchemy import text

from rag_indexer_service.config import Settings
from rag_indexer_service.jobs.broker import QUEUE_SCHEDULED
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime
from rag_indexer_service.scheduling import scheduler_status
from tests.helpers import wait_for_run
from tests.scheduling.conftest import MakeScheduler, add_cabinets


async def test_the_reaper_recovers_a_run_whose_message_was_lost(
    make_scheduler: MakeScheduler,
    stub_worker: dramatiq.Broker,
    worker_settings: Settings,
    runtime: Runtime,
    source_conn: asyncpg.Connection,
) -> None:
    # A queued run whose message never reached the broker (the sender died in between).
    await add_cabinets(source_conn, range(1, 2), docs=4)
    ledger = Ledger(runtime.db.engine)
    lost, _ = await ledger.request(1, "schedule", QUEUE_SCHEDULED)
    scheduler = make_scheduler(settings=worker_settings, broker=stub_worker)
    await scheduler.heartbeats.started(scheduler.id, schedule=scheduler.schedule, next_tick_at=None)
    await asyncio.sleep(worker_settings.redrive_queued_after_s + 0.1)

    await scheduler.reaper_job()

    run = await wait_for_run(ledger, lost.id)
    assert run.status == "succeeded" and run.counters["docs_added"] == 4
    status = await scheduler_status(runtime.db.engine)
    beat = status.schedulers[0]
    assert beat.scheduler_id == scheduler.id and beat.last_reaper_at is not None
    assert beat.last_reaper is not None and beat.last_reaper["resent"] == 1
    assert beat.last_reaper["run_ids"] == [lost.id]


async def test_only_one_scheduler_reaps_at_a_time(
    make_scheduler: MakeScheduler, runtime: Runtime
) -> None:
    async with runtime.db.engine.connect() as conn:
        await conn.execute(
            text("SELECT pg_advisory_lock(hashtextextended('rag-indexer:reaper', 0))")
        )
        assert await make_scheduler().reap() is None  # another replica holds the reaper lock
        await conn.execute(
            text("SELECT pg_advisory_unlock(hashtextextended('rag-indexer:reaper', 0))")
        )
        await conn.commit()

    assert await make_scheduler().reap() is not None


async def test_a_tick_missed_while_all_schedulers_were_down_is_caught_up_once(
    make_scheduler: MakeScheduler, runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinets(source_conn, range(1, 3), docs=1)
    every_minute = runtime.settings.model_copy(update={"schedule_cron": "* * * * *"})
    scheduler = make_scheduler(settings=every_minute)
    now = dt.datetime.now(dt.UTC)

    missed = await scheduler.missed_tick(now)
    assert missed is not None and now - dt.timedelta(minutes=1) < missed <= now
    assert scheduler.tick_for(now) == missed
    report = await scheduler.run_tick(missed)

    assert report is not None and report.enqueued == 2
    assert await scheduler.missed_tick(now) is None


async def test_the_tick_job_serves_the_current_tick_and_records_it(
    make_scheduler: MakeScheduler, runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinets(source_conn, range(1, 4), docs=1)
    every_minute = runtime.settings.model_copy(update={"schedule_cron": "* * * * *"})
    scheduler = make_scheduler(settings=every_minute)
    await scheduler.heartbeats.started(scheduler.id, schedule=scheduler.schedule, next_tick_at=None)

    await scheduler.tick_job()

    status = await scheduler_status(runtime.db.engine)
    beat, tick = status.schedulers[0], status.ticks[0]
    assert beat.state == "running" and beat.schedule == "* * * * * (UTC)"
    assert beat.last_tick_at == tick.tick_at and tick.claimed_by == scheduler.id
    assert beat.next_tick_at is not None and beat.next_tick_at > tick.tick_at
    assert (tick.seen, tick.enqueued) == (3, 3) and tick.finished_at is not None
    assert status.runs_by_status["queued"] == 3 and status.runs_by_status["failed"] == 0


async def test_a_failed_reaper_pass_and_tick_show_one_line_without_sql(
    make_scheduler: MakeScheduler, runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    # Given the run ledger's table gone (a botched migration, say): every statement on it
    # is a ProgrammingError whose text carries the statement.
    await add_cabinets(source_conn, range(1, 2), docs=1)
    await source_conn.execute("ALTER TABLE rag_runs RENAME TO rag_runs_gone")
    scheduler = make_scheduler()
    await scheduler.heartbeats.started(scheduler.id, schedule=scheduler.schedule, next_tick_at=None)

    await scheduler.reaper_job()
    report = await scheduler.run_tick(scheduler.tick_for(dt.datetime.now(dt.UTC)))

    beat = (await scheduler.heartbeats.list(silent_after_s=60))[0]
    assert beat.last_reaper is not None and report is not None
    for shown in (beat.last_reaper["error"], *report.problems):
        assert 'relation "rag_runs" does not exist' in shown, shown
        assert "[SQL" not in shown and "SELECT" not in shown and "\n" not in shown, shown
