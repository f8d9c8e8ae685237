"""Tick claims: replicas racing on one tick fan out once; a fan-out left half-way (shutdown,
dead owner) is resumed by another pass without queueing anything twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import asyncpg
import dramatiq
from sqlalchemy import text

from rag_indexer_service.config import Settings
from rag_indexer_service.jobs.broker import build_broker
from rag_indexer_service.jobs.dispatch import Dispatcher, DispatchOptions
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime, open_runtime
from rag_indexer_service.scheduling import FanOutReport, Scheduler, TickClaims
from tests.scheduling.conftest import MakeScheduler, add_cabinets, scheduled_runs, sent_messages

TICK = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def recent_tick() -> dt.datetime:
    """A tick a few minutes ago: still within the misfire grace, so it may be resumed."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(second=0, microsecond=0) - dt.timedelta(minutes=5)


async def test_two_schedulers_racing_on_one_tick_fan_out_once(
    settings: Settings, runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinets(source_conn, range(1, 21), docs=1)
    at_the_line = threading.Barrier(2, timeout=60)  # a replica that fails to start breaks it
    brokers = [build_broker(settings, allow_stub=True) for _ in range(2)]

    def replica(name: str, broker: dramatiq.Broker) -> FanOutReport | None:
        """A scheduler process of its own: own thread, event loop, engine and connections."""

        async def run() -> FanOutReport | None:
            async with open_runtime(settings) as rt:
                dispatcher = Dispatcher(
                    broker, Ledger(rt.db.engine), DispatchOptions.from_settings(settings)
                )
                scheduler = Scheduler.from_runtime(rt, dispatcher, scheduler_id=name)
                at_the_line.wait()
                return await scheduler.run_tick(TICK)

        return asyncio.run(run())

    results = await asyncio.gather(
        asyncio.to_thread(replica, "replica-a", brokers[0]),
        asyncio.to_thread(replica, "replica-b", brokers[1]),
    )

    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].enqueued == 20
    assert sum(sent_messages(b) for b in brokers) == 20
    assert len(await scheduled_runs(runtime)) == 20
    tick = await TickClaims(runtime.db.engine).get(TICK)
    assert (
        tick is not None
        and tick.claimed_by == ("replica-a", "replica-b")[results.index(winners[0])]
    )


async def test_a_live_claim_is_left_alone(
    make_scheduler: MakeScheduler, runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinets(source_conn, range(1, 3))
    claims = TickClaims(runtime.db.engine)
    assert await claims.claim(TICK, "busy-replica", stale_after_s=60)

    report = await make_scheduler().run_tick(TICK)
    resumed = await make_scheduler().resume_unfinished()

    assert report is None and resumed is None
    assert await scheduled_runs(runtime) == []


async def test_shutdown_mid_fan_out_releases_the_tick_and_another_pass_resumes_it(
    make_scheduler: MakeScheduler,
    runtime: Runtime,
    source_conn: asyncpg.Connection,
    collecting_broker: dramatiq.Broker,
) -> None:
    await add_cabinets(source_conn, range(1, 8), docs=1)
    tick_at = recent_tick()
    stopping = make_scheduler(batch_size=3, scheduler_id="stopping")
    stopping.request_stop()  # as SIGTERM would, before the first batch ends

    first = await stopping.run_tick(tick_at)

    assert first is not None and first.interrupted and first.enqueued == 3
    tick = await TickClaims(runtime.db.engine).get(tick_at)
    assert tick is not None and tick.finished_at is None and tick.heartbeat_at is None
    assert tick.error == "interrupted by shutdown after 3 cabinets"

    resumed = await make_scheduler(batch_size=3, scheduler_id="successor").resume_unfinished()

    assert resumed is not None and not resumed.interrupted
    assert (resumed.seen, resumed.enqueued, resumed.already_active) == (7, 4, 3)
    assert sorted(r.cabinet_id for r in await scheduled_runs(runtime)) == list(range(1, 8))
    assert sent_messages(collecting_broker) == 7
    tick = await TickClaims(runtime.db.engine).get(tick_at)
    assert tick is not None and tick.claimed_by == "successor" and tick.finished_at is not None


async def test_a_claim_whose_owner_died_is_taken_over(
    make_scheduler: MakeScheduler,
    runtime: Runtime,
    source_conn: asyncpg.Connection,
) -> None:
    await add_cabinets(source_conn, range(1, 4), docs=1)
    claims = TickClaims(runtime.db.engine)
    assert await claims.claim(TICK, "dead-replica", stale_after_s=60)
    async with runtime.db.engine.begin() as conn:  # its last heartbeat is long gone
        await conn.execute(
            text("UPDATE rag_schedule_ticks SET heartbeat_at = now() - '1 hour'::interval")
        )

    report = await make_scheduler().run_tick(TICK)

    assert report is not None and report.enqueued == 3
    tick = await claims.get(TICK)
    assert tick is not None and tick.claimed_by == "scheduler-a" and tick.finished_at is not None


async def test_a_finished_later_tick_supersedes_an_unfinished_one(
    make_scheduler: MakeScheduler, runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinets(source_conn, range(1, 3), docs=1)
    claims = TickClaims(runtime.db.engine)
    stale = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=20)
    assert await claims.claim(stale, "dead-replica", stale_after_s=60)
    await claims.release(stale, "dead-replica", FanOutReport())
    await make_scheduler().run_tick(stale + dt.timedelta(minutes=10))

    assert await make_scheduler().resume_unfinished() is None
