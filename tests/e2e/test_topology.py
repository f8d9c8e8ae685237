"""The production topology is the tested topology: separate `api`, `worker` and `scheduler`
processes (each with its own hash seed) on one Redis and one Postgres, across three ticks.

Each step is a module fixture (it runs once, in order, whichever test asks first); the tests
assert what the step did.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
from dataclasses import dataclass
from typing import Any

import asyncpg
import psutil
import pytest

from rag_indexer_service.config import load_settings
from rag_indexer_service.db.engine import asyncpg_dsn
from rag_indexer_service.indexing.report import IndexReport
from rag_indexer_service.runtime import open_runtime
from tests.e2e.conftest import DEMO_CABINETS, Topology, last_run_id, wait_finished

# The first test's setup starts the whole topology and runs tick 1: 98 s were measured at load
# 10-15 on 2 cores, near the suite-wide 120 s, while its own waits allow more.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ALL_CABINETS = list(range(1, DEMO_CABINETS + 1))


@dataclass
class Tick:
    tick_at: str
    codes: list[int]
    replicas: set[str]
    record: dict[str, Any]
    runs: list[dict[str, Any]]
    outputs: list[str]


async def run_tick(top: Topology, tick_at: str, *, expect_runs: int | None = None) -> Tick:
    """Two scheduler replicas race for the tick; then wait for the runs it queued."""
    before = await last_run_id(top)
    replicas = [
        top.start(f"scheduler-{tick_at[11:13]}-{n}", "scheduler", "--once", "--tick-at", tick_at)
        for n in (1, 2)
    ]
    codes = [await asyncio.to_thread(p.wait, 60) for p in replicas]
    async with top.client() as client:
        record = (await client.get("/api/v1/rag/scheduler")).json()["last_tick"]
    queued = record["cabinets_enqueued"] if expect_runs is None else expect_runs
    runs = await wait_finished(top, after_id=before, count=queued)
    host = socket.gethostname()
    return Tick(
        tick_at=tick_at,
        codes=codes,
        replicas={f"{host}:{p.pid}" for p in replicas},
        record=record,
        runs=runs,
        outputs=[top.log_tails(40)],
    )


async def fingerprints(top: Topology) -> dict[int, str | None]:
    """What the source's fingerprint query says now (computed in this process, another seed)."""
    settings = load_settings(database_url=top.database_url, data_dir=top.logs.parent / "t")
    async with open_runtime(settings) as rt:
        return await rt.source.fingerprints(ALL_CABINETS)


async def chunk_count(top: Topology) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(top.database_url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM rag_chunks"))
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def tick_1(topology: Topology) -> Tick:
    return await run_tick(topology, "2026-01-01T00:00:00+00:00")


@pytest.fixture(scope="module")
async def tick_2(topology: Topology, tick_1: Tick) -> tuple[Tick, int, int]:
    chunks_before = await chunk_count(topology)
    tick = await run_tick(topology, "2026-01-01T06:00:00+00:00", expect_runs=0)
    return tick, chunks_before, await chunk_count(topology)


@dataclass
class Mutated:
    tick: Tick
    changed: set[int]
    mutate: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
async def tick_3(topology: Topology, tick_2: tuple[Tick, int, int]) -> Mutated:
    before = await fingerprints(topology)
    mutate = await topology.rag("demo", "seed", "--mutate", "0.01", "--seed", "7")
    after = await fingerprints(topology)
    changed = {c for c in ALL_CABINETS if before[c] != after[c]}
    tick = await run_tick(topology, "2026-01-01T12:00:00+00:00")
    return Mutated(tick=tick, changed=changed, mutate=mutate)


def assert_one_replica_fanned_out(tick: Tick) -> None:
    assert tick.codes == [0, 0], tick.outputs
    assert tick.record["tick_at"].startswith(tick.tick_at[:19]), tick.record
    assert tick.record["claimed_by"] in tick.replicas
    assert tick.record["finished_at"] is not None and tick.record["error"] is None


async def test_tick_1_queues_and_indexes_every_cabinet(topology: Topology, tick_1: Tick) -> None:
    assert_one_replica_fanned_out(tick_1)
    assert tick_1.record["cabinets_seen"] == DEMO_CABINETS
    assert tick_1.record["cabinets_enqueued"] == DEMO_CABINETS
    assert sorted(r["cabinet_id"] for r in tick_1.runs) == ALL_CABINETS
    assert {(r["trigger"], r["status"]) for r in tick_1.runs} == {("schedule", "succeeded")}
    assert all(r["counters"]["docs_added"] > 0 for r in tick_1.runs)
    assert len(set(topology.seeds_used)) == len(topology.seeds_used)


async def search_indexes(top: Topology) -> dict[str, bool]:
    conn = await asyncpg.connect(asyncpg_dsn(top.database_url))
    try:
        rows = await conn.fetch(
            "SELECT c.relname, i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'rag_chunks'::regclass AND c.relname ~ '^rag_chunks_(ann|fts)_'"
        )
    finally:
        await conn.close()
    return {row["relname"]: row["indisvalid"] for row in rows}


async def test_tick_1_is_followed_by_each_cabinets_search_index_build_in_a_worker(
    topology: Topology, tick_1: Tick
) -> None:
    # Every demo cabinet is above RAG_SEARCH_ANN_MIN_CHUNKS here: after its run, the worker
    # queued the build of its indexes on rag-indexes, which a worker process ran
    expected = {f"rag_chunks_{kind}_{c}_0": True for kind in ("ann", "fts") for c in ALL_CABINETS}
    lines = [f"cabinet {c}: search indexes up to date" for c in ALL_CABINETS]
    for _ in range(1200):  # builds that find another under way come back 5 s later
        indexes = await search_indexes(topology)
        logged = "".join(p.read_text(errors="replace") for p in topology.logs.glob("worker*.log"))
        if indexes == expected and all(line in logged for line in lines):
            break
        await asyncio.sleep(0.1)
    assert indexes == expected, topology.log_tails()
    assert [line for line in lines if line not in logged] == []
    # ... and the API process says the cabinets are searched through them
    async with topology.client() as client:
        shown = [(await client.get(f"/api/v1/rag/cabinets/{c}")).json() for c in ALL_CABINETS]
    assert {(s["search_index"]["path"], s["search_index"]["build_due"]) for s in shown} == {
        ("ann", False)
    }


async def test_tick_2_without_source_change_queues_nothing_and_embeds_nothing(
    tick_2: tuple[Tick, int, int],
) -> None:
    tick, chunks_before, chunks_after = tick_2

    assert_one_replica_fanned_out(tick)
    assert tick.record["cabinets_seen"] == DEMO_CABINETS
    assert tick.record["cabinets_skipped"] == DEMO_CABINETS
    assert tick.record["cabinets_enqueued"] == 0 and tick.runs == []
    assert chunks_after == chunks_before


async def test_after_a_mutation_only_the_changed_cabinets_are_queued(tick_3: Mutated) -> None:
    tick = tick_3.tick

    assert tick_3.mutate.returncode == 0, tick_3.mutate.stderr
    assert 0 < len(tick_3.changed) < DEMO_CABINETS, "the mutation should touch some cabinets"
    assert_one_replica_fanned_out(tick)
    assert tick.record["cabinets_enqueued"] == len(tick_3.changed)
    assert tick.record["cabinets_skipped"] == DEMO_CABINETS - len(tick_3.changed)
    assert {r["cabinet_id"] for r in tick.runs} == tick_3.changed
    assert all(r["status"] == "succeeded" for r in tick.runs), tick.runs
    for run in tick.runs:  # each queued cabinet really had something to do
        c = run["counters"]
        assert (
            c["docs_added"] + c["docs_updated"] + c["docs_metadata_only"] + c["docs_deleted"] > 0
        ), run


async def test_api_trigger_and_cli_queue_both_succeed_with_every_ledger_counter(
    topology: Topology, tick_3: Mutated
) -> None:
    unchanged = [c for c in ALL_CABINETS if c not in tick_3.changed]
    before = await last_run_id(topology)
    async with topology.client() as client:
        accepted = await client.post(f"/api/v1/rag/index/{unchanged[0]}")
    queued = await topology.rag("index", str(unchanged[1]), "--queue", "--json")

    assert accepted.status_code == 202, accepted.text
    assert queued.returncode == 0, queued.stdout + queued.stderr
    [cli_run] = json.loads(queued.stdout)
    runs = await wait_finished(topology, after_id=before, count=2)
    by_id = {r["run_id"]: r for r in runs}
    api_run, queued_run = by_id[accepted.json()["run_id"]], by_id[cli_run["run_id"]]
    assert (api_run["status"], api_run["trigger"]) == ("succeeded", "manual")
    assert (queued_run["status"], queued_run["trigger"]) == ("succeeded", "cli")

    stored = await ledger_row(topology, api_run["run_id"])
    report_fields = {f.name for f in dataclasses.fields(IndexReport)}
    ledger_counters = {name for name in stored if name in report_fields} - {
        "cabinet_id",
        "duration_s",
        "failures",
        "mode",
        "full_reason",
    }
    assert "scan_skipped" in ledger_counters
    assert set(api_run["counters"]) == ledger_counters
    assert {k: api_run["counters"][k] for k in ledger_counters} == {
        k: stored[k] for k in ledger_counters
    }
    assert api_run["counters"]["scan_skipped"] is True  # unchanged since tick 1
    assert api_run["counters"]["chunks_embedded"] == 0


async def test_a_forced_api_run_scans_in_a_worker_process_and_the_ledger_says_so(
    topology: Topology, tick_3: Mutated
) -> None:
    unchanged = [c for c in ALL_CABINETS if c not in tick_3.changed]
    before = await last_run_id(topology)
    async with topology.client() as client:
        accepted = await client.post(f"/api/v1/rag/index/{unchanged[0]}?force=true")
    assert accepted.status_code == 202 and accepted.json()["forced"] is True, accepted.text

    [run] = await wait_finished(topology, after_id=before, count=1)
    assert (run["status"], run["forced"], run["mode"]) == ("succeeded", True, "full")
    assert run["full_reason"] == "forced" and run["counters"]["scan_skipped"] is False
    assert run["counters"]["docs_unchanged"] == run["counters"]["docs_seen"] > 0


async def ledger_row(top: Topology, run_id: int) -> dict[str, Any]:
    conn = await asyncpg.connect(asyncpg_dsn(top.database_url))
    try:
        row = await conn.fetchrow("SELECT * FROM rag_runs WHERE id = $1", run_id)
    finally:
        await conn.close()
    assert row is not None
    return dict(row)


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_sigkill_of_a_worker_parent_leaves_no_worker_process_behind(
    topology: Topology,
) -> None:
    parent = topology.workers[0]
    deadline = asyncio.get_running_loop().time() + 30
    while not (children := psutil.Process(parent.pid).children(recursive=True)):
        assert asyncio.get_running_loop().time() < deadline, "the worker forked no process"
        await asyncio.sleep(0.2)

    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = asyncio.get_running_loop().time() + 5
    while any(alive(c) for c in children) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)

    assert [c.pid for c in children if alive(c)] == []
