"""Real `rag-indexer worker` processes, real Postgres and Redis, a slow real embedding server:
a run survives a database restart through its own Dramatiq retry, and SIGTERM lets the run in
flight finish before the worker closes its database and embedder."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from rag_indexer_service.config import Settings
from rag_indexer_service.db.engine import asyncpg_dsn
from rag_indexer_service.jobs.broker import build_broker
from rag_indexer_service.jobs.dispatch import Dispatcher, DispatchOptions
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime
from tests.helpers import add_cabinet
from tests.indexing.conftest import MODELS
from tests.indexing.fake_embedding_api import FakeEmbeddingAPI

Spawn = Callable[..., subprocess.Popen[bytes]]
DOCS = 20


@pytest.fixture
def slow_api(embedding_api: FakeEmbeddingAPI) -> Iterator[FakeEmbeddingAPI]:
    embedding_api.delay_s = 0.4  # a run of 4 batches takes ~2 s
    yield embedding_api


@pytest.fixture
def env(worker_env: dict[str, str], slow_api: FakeEmbeddingAPI) -> dict[str, str]:
    return {
        **worker_env,
        "RAG_EMBEDDER": "openai",
        "RAG_OPENAI_BASE_URL": slow_api.url,
        "RAG_OPENAI_API_KEY": slow_api.api_key,
        "RAG_OPENAI_MODEL": "fake-small",
        "RAG_EMBEDDING_DIM": str(MODELS["fake-small"]),
        "RAG_BATCH_SIZE_DOCS": "5",
        # A retry after 2 s, and a heartbeat that stays "fresh" for a minute: only the retry
        # itself can recover the run within the test's time.
        "RAG_RETRY_MIN_BACKOFF_S": "2",
        "RAG_RETRY_MAX_BACKOFF_S": "2",
        "RAG_STALE_RUN_AFTER_S": "60",
    }


@pytest.fixture
def redis_dispatcher(runtime: Runtime, worker_settings: Settings, broker_url: str) -> Dispatcher:
    settings = worker_settings.model_copy(update={"broker_url": broker_url})
    return Dispatcher(
        build_broker(settings), Ledger(runtime.db.engine), DispatchOptions.from_settings(settings)
    )


async def run_row(database_url: str, run_id: int) -> dict[str, Any]:
    """The run's row, read on a connection of its own (the pools may hold dead ones)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        row = await conn.fetchrow("SELECT * FROM rag_runs WHERE id = $1", run_id)
    finally:
        await conn.close()
    assert row is not None
    return dict(row)


async def wait_row(
    database_url: str, run_id: int, ready: Callable[[dict[str, Any]], bool], timeout_s: float
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        row = await run_row(database_url, run_id)
        if ready(row):
            return row
        assert asyncio.get_running_loop().time() < deadline, f"run still {row['status']}: {row}"
        await asyncio.sleep(0.1)


async def restart_database(server_url: str, name: str, down_s: float) -> None:
    """What a Postgres restart does to one database: every connection dies, none is accepted
    for `down_s`."""
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await asyncio.sleep(down_s)
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    finally:
        await admin.close()


async def test_a_database_restart_mid_run_is_recovered_by_the_runs_own_retry(
    spawn: Spawn,
    env: dict[str, str],
    redis_dispatcher: Dispatcher,
    source_conn: asyncpg.Connection,
    server_url: str,
    database_url: str,
) -> None:
    await add_cabinet(source_conn, 5, docs=DOCS)
    spawn("worker", "--processes", "1", "--threads", "1", env=env)
    run_id = (await redis_dispatcher.trigger(5, "manual")).run.id
    await wait_row(database_url, run_id, lambda r: (r["progress_done"] or 0) >= 5, 30)

    # The failed attempt cannot record its failure: the database refuses connections.
    await restart_database(server_url, str(make_url(database_url).database), down_s=1.5)

    run = await wait_row(database_url, run_id, lambda r: r["status"] == "succeeded", 20)
    assert run["attempt"] == 2
    assert run["docs_added"] + run["docs_unchanged"] == DOCS


async def test_sigterm_lets_the_run_in_flight_finish_before_closing(
    spawn: Spawn,
    env: dict[str, str],
    redis_dispatcher: Dispatcher,
    source_conn: asyncpg.Connection,
    database_url: str,
) -> None:
    await add_cabinet(source_conn, 6, docs=DOCS)
    worker = spawn("worker", "--processes", "1", "--threads", "1", env=env, stderr=subprocess.PIPE)
    run_id = (await redis_dispatcher.trigger(6, "manual")).run.id
    await wait_row(database_url, run_id, lambda r: (r["progress_done"] or 0) >= 5, 30)

    worker.send_signal(signal.SIGTERM)
    _, err = await asyncio.to_thread(worker.communicate, timeout=30)

    run = await run_row(database_url, run_id)
    assert (run["status"], run["attempt"], run["docs_added"]) == ("succeeded", 1, DOCS), run
    assert worker.returncode == 0, err.decode()
