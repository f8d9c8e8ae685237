"""The fan-out of one tick against the real test database: every listed cabinet gets one
scheduled run, unchanged ones are skipped, vanished ones are purged behind a guard."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import asyncpg
import dramatiq
import pytest
from sqlalchemy import text

from rag_indexer_service.config import Settings
from rag_indexer_service.jobs.broker import QUEUE_MANUAL, QUEUE_SCHEDULED, build_broker
from rag_indexer_service.jobs.execution import run_inline
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime, open_runtime
from rag_indexer_service.scheduling import TickClaims
from tests.scheduling.conftest import (
    MakeScheduler,
    add_cabinets,
    index_counts,
    scheduled_runs,
    sent_messages,
)

TICK = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
LATER_TICK = TICK + dt.timedelta(hours=6)


async def index_now(runtime: Runtime, cabinet_ids: range) -> None:
    """Index cabinets inline, as a successful run would (stores their fingerprint)."""
    for cabinet_id in cabinet_ids:
        await run_inline(runtime, cabinet_id)


async def test_a_tick_queues_one_scheduled_run_per_listed_cabinet(
    make_scheduler: MakeScheduler,
    runtime: Runtime,
    source_conn: asyncpg.Connection,
    collecting_broker: dramatiq.Broker,
) -> None:
    await add_cabinets(source_conn, range(1, 6))
    await source_conn.execute("INSERT INTO src_cabinets (id, active) VALUES (99, false)")
    scheduler = make_scheduler(batch_size=2)

    report = await scheduler.run_tick(TICK)

    assert report is not None and report.error is None
    assert (report.seen, report.enqueued, report.skipped, report.already_active) == (5, 5, 0, 0)
    runs = await scheduled_runs(runtime)
    assert sorted(r.cabinet_id for r in runs) == [1, 2, 3, 4, 5]
    assert {(r.status, r.queue) for r in runs} == {("queued", QUEUE_SCHEDULED)}
    assert sent_messages(collecting_broker) == 5
    tick = await TickClaims(runtime.db.engine).get(TICK)
    assert tick is not None and tick.claimed_by == "scheduler-a" and tick.finished_at is not None
    assert (tick.seen, tick.enqueued, tick.skipped, tick.purged) == (5, 5, 0, 0)


async def test_the_same_tick_never_fans_out_twice(
    make_scheduler: MakeScheduler,
    runtime: Runtime,
    source_conn: asyncpg.Connection,
    collecting_broker: dramatiq.Broker,
) -> None:
    await add_cabinets(source_conn, range(1, 4))
    scheduler = make_scheduler()
    await scheduler.run_tick(TICK)

    again = await scheduler.run_tick(TICK)
    other_replica = await make_scheduler(scheduler_id="scheduler-b").run_tick(TICK)

    assert again is None and other_replica is None
    assert len(await scheduled_runs(runtime)) == 3 and sent_messages(collecting_broker) == 3


async def test_a_cabinet_with_an_active_run_is_not_queued_again(
    make_scheduler: MakeScheduler,
    runtime: Runtime,
    source_conn: asyncpg.Connection,
    collecting_broker: dramatiq.Broker,
) -> None:
    await add_cabinets(source_conn, range(1, 4))
    await Ledger(runtime.db.engine).request(2, "manual", QUEUE_MANUAL)

    report = await make_scheduler().run_tick(LATER_TICK)

    assert report is not None and (report.enqueued, report.already_active) == (2, 1)
    assert sent_messages(collecting_broker) == 2


async def _fail_last_run(runtime: Runtime, cabinet_id: int) -> None:
    ledger = Ledger(runtime.db.engine)
    run, _ = await ledger.request(cabinet_id, "manual", QUEUE_MANUAL)
    await ledger.fail(run.id, "EmbeddingUnavailable: provider down", retrying=False)


async def _change_source(runtime: Runtime, cabinet_id: int) -> None:
    async with runtime.db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE src_docs SET version = version + 1, body = body || ' Новое.' "
                 "WHERE cabinet_id = :c AND id = 'd0'"),
            {"c": cabinet_id},
        )  # fmt: skip


async def _switch_embedder(runtime: Runtime, cabinet_id: int) -> None:
    async with runtime.db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE rag_cabinets SET embedder_id = 'hashing:old:8' WHERE cabinet_id = :c"),
            {"c": cabinet_id},
        )


async def _nothing(runtime: Runtime, cabinet_id: int) -> None:
    return None


@pytest.mark.parametrize(
    "since_last_success, outcome",
    [
        (_nothing, "skipped"),
        (_change_source, "enqueued"),
        (_fail_last_run, "enqueued"),
        (_switch_embedder, "enqueued"),
    ],
    ids=["unchanged", "source changed", "last run failed", "indexed by another embedder"],
)
async def test_unchanged_cabinets_are_skipped(
    make_scheduler: MakeScheduler,
    runtime: Runtime,
    source_conn: asyncpg.Connection,
    since_last_success: object,
    outcome: str,
) -> None:
    await add_cabinets(source_conn, range(1, 3))
    await index_now(runtime, range(1, 3))
    await since_last_success(runtime, 1)  # type: ignore[operator]

    report = await make_scheduler().run_tick(TICK)

    # Cabinet 2 is unchanged in every case.
    assert report is not None
    expected = (1, 1) if outcome == "enqueued" else (0, 2)
    assert (report.enqueued, report.skipped) == expected
    queued = {r.cabinet_id for r in await scheduled_runs(runtime)}
    assert queued == ({1} if outcome == "enqueued" else set())


async def test_an_unchanged_cabinet_still_without_its_search_indexes_gets_a_run(
    make_scheduler: MakeScheduler, runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    # Given two unchanged cabinets big enough for search indexes of their own (at this
    # threshold), one of which has them: the other's build job was lost
    await add_cabinets(source_conn, range(1, 3), docs=5)
    await index_now(runtime, range(1, 3))
    small_threshold = runtime.settings.model_copy(update={"search_ann_min_chunks": 5})
    async with open_runtime(small_threshold) as rt:
        assert await rt.store.refresh_ann_index(2) == [0]

        # When a tick fans out
        report = await make_scheduler(store=rt.store).run_tick(TICK)

    # Then the one without them gets a run (after which a worker queues the build)
    assert report is not None and (report.enqueued, report.skipped) == (1, 1)
    assert {r.cabinet_id for r in await scheduled_runs(runtime)} == {1}


async def test_skipping_can_be_turned_off(
    make_scheduler: MakeScheduler, runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinets(source_conn, range(1, 3))
    await index_now(runtime, range(1, 3))
    always = runtime.settings.model_copy(update={"skip_unchanged": False})

    report = await make_scheduler(settings=always).run_tick(TICK)

    assert report is not None and (report.enqueued, report.skipped) == (2, 0)


async def test_a_cabinet_gone_from_the_source_is_purged(
    make_scheduler: MakeScheduler, runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinets(source_conn, range(1, 4))
    await index_now(runtime, range(1, 4))
    await source_conn.execute("UPDATE src_cabinets SET active = false WHERE id = 3")

    report = await make_scheduler().run_tick(TICK)

    assert report is not None and report.purged == 1 and report.purge_refused is None
    assert await index_counts(runtime) == {1: (3, 3), 2: (3, 3)}
    tick = await TickClaims(runtime.db.engine).get(TICK)
    assert tick is not None and tick.purged == 1


@pytest.mark.parametrize(
    "deactivate, reason",
    [
        ("TRUE", "the source listed no cabinets"),
        ("id >= 2", "2 of 3 indexed cabinets (67%) vanished from the source"),
    ],
    ids=["empty list", "shrank by more than RAG_MAX_DELETE_SHARE"],
)
async def test_a_suspicious_cabinet_list_purges_nothing(
    make_scheduler: MakeScheduler,
    runtime: Runtime,
    source_conn: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
    deactivate: str,
    reason: str,
) -> None:
    await add_cabinets(source_conn, range(1, 4))
    await index_now(runtime, range(1, 4))
    await source_conn.execute(f"UPDATE src_cabinets SET active = false WHERE {deactivate}")

    report = await make_scheduler().run_tick(TICK)

    assert report is not None and report.purged == 0
    assert report.purge_refused is not None and reason in report.purge_refused
    assert await index_counts(runtime) == {1: (3, 3), 2: (3, 3), 3: (3, 3)}
    assert any(r.levelname == "ERROR" and reason in r.getMessage() for r in caplog.records)
    tick = await TickClaims(runtime.db.engine).get(TICK)
    assert tick is not None and tick.finished_at is not None
    assert tick.error is not None and reason in tick.error


async def test_one_cabinets_problem_does_not_stop_the_loop(
    settings: Settings,
    source_conn: asyncpg.Connection,
    tmp_path: Path,
    make_scheduler: MakeScheduler,
) -> None:
    # The fingerprint sums the tags as numbers; cabinet 2 gets a tag that is not a number.
    sources = tmp_path / "numeric_tags.toml"
    sources.write_text(
        settings.sources_file.read_text().replace(
            "coalesce(max(version), 0)::text", "coalesce(sum(CAST(tag AS int)), 0)::text"
        )
    )
    await add_cabinets(source_conn, range(1, 4))
    await source_conn.execute("UPDATE src_docs SET tag = '1'")
    async with open_runtime(settings.model_copy(update={"sources_file": sources})) as rt:
        await index_now(rt, range(1, 4))
        await source_conn.execute("UPDATE src_docs SET tag = 'x' WHERE cabinet_id = 2")
        scheduler = make_scheduler(settings=rt.settings)
        scheduler.fan_out.source = rt.source

        report = await scheduler.run_tick(TICK)

    assert report is not None and report.error is None
    assert (report.seen, report.enqueued, report.skipped, report.errors) == (3, 1, 2, 1)
    assert report.problems[0].startswith("cabinet 2: fingerprint failed, queued anyway")


async def test_broker_down_fails_the_tick_before_creating_any_run(
    make_scheduler: MakeScheduler, runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinets(source_conn, range(1, 4))
    unreachable = runtime.settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    broker = build_broker(unreachable)
    try:
        report = await make_scheduler(settings=unreachable, broker=broker).run_tick(TICK)
    finally:
        broker.close()

    assert report is not None and report.error is not None
    assert report.error.startswith("broker unreachable: ")
    assert await Ledger(runtime.db.engine).list_runs() == []
    tick = await TickClaims(runtime.db.engine).get(TICK)  # released: another pass resumes it
    assert tick is not None and tick.finished_at is None and tick.heartbeat_at is None
