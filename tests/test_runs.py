"""The run ledger: dedupe, rerun coalescing and transitions, on a real Postgres."""

from __future__ import annotations

import asyncio

from rag_indexer_service.indexing.report import IndexReport
from rag_indexer_service.runs import Ledger


async def test_request_creates_one_queued_run(ledger: Ledger) -> None:
    run, created = await ledger.request(7, "manual", "rag-manual")

    assert created and run.status == "queued" and run.attempt == 0 and run.cabinet_id == 7


async def test_request_while_queued_returns_the_same_run(ledger: Ledger) -> None:
    first, _ = await ledger.request(7, "manual", "rag-manual")

    again, created = await ledger.request(7, "schedule", "rag-scheduled")

    assert not created and again.id == first.id and not again.rerun_requested


async def test_request_while_running_flags_one_rerun_and_finishing_queues_it(
    ledger: Ledger,
) -> None:
    run, _ = await ledger.request(7, "manual", "rag-manual")
    await ledger.start_attempt(run.id, worker_id="w1", stale_after_s=60)

    for _ in range(3):
        again, created = await ledger.request(7, "manual", "rag-manual")
        assert not created and again.id == run.id and again.rerun_requested

    follow_up = await ledger.succeed(run.id, IndexReport(cabinet_id=7), worker_id="w1")

    assert follow_up is not None and follow_up.status == "queued"
    assert follow_up.follow_up_of == run.id
    assert (await ledger.active_run(7)) == follow_up


async def test_fifty_concurrent_requests_make_one_active_run(ledger: Ledger) -> None:
    results = await asyncio.gather(*(ledger.request(9, "manual", "rag-manual") for _ in range(50)))

    assert sum(created for _, created in results) == 1
    assert len({run.id for run, _ in results}) == 1


async def test_start_attempt_claims_once_and_finished_runs_are_not_reclaimed(
    ledger: Ledger,
) -> None:
    run, _ = await ledger.request(7, "cli", "rag-manual")

    claimed = await ledger.start_attempt(run.id, worker_id="w1", stale_after_s=60)
    second = await ledger.start_attempt(run.id, worker_id="w2", stale_after_s=60)
    assert claimed is not None and claimed.attempt == 1 and second is None

    await ledger.succeed(run.id, IndexReport(cabinet_id=7, docs_seen=3), worker_id="w1")
    assert await ledger.start_attempt(run.id, worker_id="w2", stale_after_s=0) is None
    done = await ledger.get(run.id)
    assert done is not None and done.status == "succeeded" and done.counters["docs_seen"] == 3


async def test_stale_running_run_is_taken_over(ledger: Ledger) -> None:
    run, _ = await ledger.request(7, "cli", "rag-manual")
    await ledger.start_attempt(run.id, worker_id="dead", stale_after_s=60)
    await asyncio.sleep(0.05)

    taken = await ledger.start_attempt(run.id, worker_id="alive", stale_after_s=0.01)

    assert taken is not None and taken.worker_id == "alive" and taken.attempt == 2


async def test_bulk_request_skips_cabinets_with_an_active_run(ledger: Ledger) -> None:
    await ledger.request(2, "manual", "rag-manual")

    created, already_active = await ledger.request_many_ids(
        [1, 2, 3, 3], "schedule", "rag-scheduled"
    )

    runs = [await ledger.get(run_id) for run_id in created]
    assert sorted(r.cabinet_id for r in runs if r is not None) == [1, 3]
    assert already_active == 1


async def test_force_is_recorded_joins_a_waiting_run_and_leaves_a_running_one(
    ledger: Ledger,
) -> None:
    queued, _ = await ledger.request(7, "schedule", "rag-scheduled")
    joined, created = await ledger.request(7, "manual", "rag-manual", force=True)
    assert not queued.forced and not created and joined.id == queued.id and joined.forced

    await ledger.start_attempt(queued.id, worker_id="w1", stale_after_s=60)
    other, _ = await ledger.request(8, "manual", "rag-manual")
    await ledger.start_attempt(other.id, worker_id="w1", stale_after_s=60)
    running, _ = await ledger.request(8, "manual", "rag-manual", force=True)
    assert running.id == other.id and not running.forced and running.rerun_requested
    follow_up = await ledger.succeed(running.id, IndexReport(cabinet_id=8), worker_id="w1")
    assert follow_up is not None and follow_up.forced and not follow_up.rerun_forced

    waiting, _ = await ledger.request(11, "schedule", "rag-scheduled")
    created_ids, active = await ledger.request_many_ids(
        [7, 9, 10, 11], "cli", "rag-manual", force=True
    )
    assert active == 2
    assert all(run.forced for run in (await ledger.get_many(created_ids)).values())
    bulk_running = await ledger.get(queued.id)
    assert bulk_running is not None and bulk_running.rerun_requested and bulk_running.rerun_forced
    joined_in_bulk = await ledger.get(waiting.id)
    assert joined_in_bulk is not None and joined_in_bulk.forced
