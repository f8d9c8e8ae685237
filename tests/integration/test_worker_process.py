"""Real `rag-indexer worker` processes, real Redis, real Postgres: runs survive crashes and
lost messages, and nothing is indexed twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from rag_indexer_service.config import Settings
from rag_indexer_service.jobs.broker import build_broker
from rag_indexer_service.jobs.dispatch import Dispatcher, DispatchOptions
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime
from tests.helpers import add_cabinet, wait_for_run

Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def redis_dispatcher(runtime: Runtime, worker_settings: Settings, broker_url: str) -> Dispatcher:
    settings = worker_settings.model_copy(update={"broker_url": broker_url})
    return Dispatcher(
        build_broker(settings), Ledger(runtime.db.engine), DispatchOptions.from_settings(settings)
    )


async def index_counts(runtime: Runtime, cabinet_id: int) -> tuple[int, int, int]:
    """Documents, chunk rows and distinct chunk keys of the cabinet."""
    counts = await runtime.store.row_counts(cabinet_id)
    keys = {(c.kind, c.doc_id, c.chunk_no) for c in await runtime.store.chunks(cabinet_id)}
    return counts.documents, counts.chunks, len(keys)


async def test_worker_process_runs_a_triggered_cabinet(
    spawn: Spawn,
    redis_dispatcher: Dispatcher,
    runtime: Runtime,
    ledger: Ledger,
    source_conn: asyncpg.Connection,
) -> None:
    await add_cabinet(source_conn, 3, docs=25)
    spawn("worker", "--processes", "1", "--threads", "1")

    result = await redis_dispatcher.trigger(3, "manual")
    run = await wait_for_run(ledger, result.run.id, timeout_s=60)

    assert run.status == "succeeded" and run.counters["docs_added"] == 25
    hits = await runtime.indexer.search(3, "Товар 7", k=3)
    assert hits[0].doc_id == "d7"


async def test_a_permanent_failure_is_one_attempt_and_one_line_without_traceback(
    spawn: Spawn, redis_dispatcher: Dispatcher, ledger: Ledger, tmp_path: Path
) -> None:
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log_file:
        worker = spawn("worker", "--processes", "1", "--threads", "1", stderr=log_file)
        result = await redis_dispatcher.trigger(404, "manual")  # the source does not list it
        run = await wait_for_run(ledger, result.run.id, timeout_s=60)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)

    assert (run.status, run.attempt) == ("failed", 1)
    logged = log_path.read_text()
    assert f"run {run.id} attempt failed (cabinet 404 is not listed by the source)" in logged
    assert "Traceback" not in logged and "Retries exceeded" not in logged, logged
    assert "alembic" not in logged, logged  # its INFO lines at import say nothing to an operator


async def test_killed_worker_run_is_recovered_without_duplicates(
    spawn: Spawn,
    redis_dispatcher: Dispatcher,
    runtime: Runtime,
    ledger: Ledger,
    source_conn: asyncpg.Connection,
    worker_settings: Settings,
    worker_env: dict[str, str],
) -> None:
    # The source stalls once, after the first batches were written, so the kill lands mid-run.
    await add_cabinet(source_conn, 1, docs=400)
    await source_conn.execute("CREATE SEQUENCE stall_once")
    await source_conn.execute(
        "CREATE VIEW src_docs_slow AS SELECT * FROM src_docs WHERE CASE WHEN id = 'd300' "
        "THEN (CASE WHEN nextval('stall_once') = 1 THEN pg_sleep(8) IS NOT NULL ELSE true END) "
        "ELSE true END"
    )
    sources = worker_settings.sources_file
    unsorted = sources.read_text().replace("ORDER BY id", "")  # rows stream in insert order
    sources.write_text(unsorted.replace("price FROM src_docs", "price FROM src_docs_slow"))

    # One write transaction per batch of 50, so the kill lands between written batches.
    first = spawn(
        "worker",
        "--processes",
        "1",
        "--threads",
        "1",
        env={**worker_env, "RAG_WRITE_BATCH_DOCS": "50"},
    )
    result = await redis_dispatcher.trigger(1, "manual")
    running = await wait_for_run(ledger, result.run.id, ("running",), timeout_s=60)
    for _ in range(400):  # wait for the five batches before the stall (d300) to be written
        if (await index_counts(runtime, 1))[0] >= 250:
            break
        await asyncio.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    partial = await index_counts(runtime, 1)
    assert 0 < partial[0] < 400

    await asyncio.sleep(worker_settings.stale_run_after_s + 0.3)
    redriven = await redis_dispatcher.redrive_stale()
    assert redriven.recovered == 1 and redriven.run_ids == [running.id]
    spawn("worker", "--processes", "1", "--threads", "1")
    run = await wait_for_run(ledger, running.id, timeout_s=60)

    assert run.status == "succeeded" and run.attempt == 2
    assert await index_counts(runtime, 1) == (400, 400, 400)


async def test_lost_message_is_redriven(
    spawn: Spawn,
    redis_dispatcher: Dispatcher,
    ledger: Ledger,
    source_conn: asyncpg.Connection,
    broker_url: str,
    worker_settings: Settings,
) -> None:
    import redis

    await add_cabinet(source_conn, 2, docs=5)
    result = await redis_dispatcher.trigger(2, "manual")
    young = await redis_dispatcher.redrive_stale()
    assert young.resent == 0

    redis.Redis.from_url(broker_url).flushdb()  # the message is gone
    await asyncio.sleep(worker_settings.redrive_queued_after_s + 0.2)
    redriven = await redis_dispatcher.redrive_stale()
    spawn("worker", "--processes", "1", "--threads", "1")
    run = await wait_for_run(ledger, result.run.id, timeout_s=60)

    assert redriven.resent == 1 and run.status == "succeeded" and run.attempt == 1


async def test_queued_run_with_its_message_present_is_left_alone(
    redis_dispatcher: Dispatcher, ledger: Ledger, worker_settings: Settings
) -> None:
    result = await redis_dispatcher.trigger(2, "manual")
    await asyncio.sleep(worker_settings.redrive_queued_after_s + 0.2)

    report = await redis_dispatcher.redrive_stale()

    assert report.still_queued == 1 and report.resent == 0
    run = await ledger.get(result.run.id)
    assert run is not None and run.status == "queued"


async def test_worker_without_broker_url_is_a_one_line_error(
    worker_env: dict[str, str],
) -> None:
    env = {k: v for k, v in worker_env.items() if k != "RAG_BROKER_URL"}
    proc = await asyncio.create_subprocess_exec(
        "rag-indexer",
        "worker",
        env={**env, "PATH": os.path.dirname(os.sys.executable) + ":" + env.get("PATH", "")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()

    assert proc.returncode == 1
    assert err.decode().strip().startswith("error: RAG_BROKER_URL is not set")
    assert len(err.decode().strip().splitlines()) == 1
