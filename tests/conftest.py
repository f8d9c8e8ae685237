"""Shared fixtures: a real Postgres with pgvector (embedded, or RAG_TEST_DATABASE_URL), one
fresh database per test cloned from a migrated template, and a small SQL source."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import dramatiq
import pytest
from sqlalchemy.engine import make_url

from rag_indexer_service.config import Settings, load_settings
from rag_indexer_service.db.embedded import start_embedded_postgres
from rag_indexer_service.db.engine import asyncpg_dsn, open_database
from rag_indexer_service.jobs.broker import build_broker
from rag_indexer_service.jobs.dispatch import Dispatcher, DispatchOptions
from rag_indexer_service.jobs.worker import setup_worker
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime, open_runtime
from tests.helpers import flushed_redis

TEMPLATE_DB = "rag_test_template"

SOURCE_TOML = textwrap.dedent(
    """
    [cabinets]
    query = "SELECT id AS cabinet_id FROM src_cabinets WHERE active ORDER BY id"
    fingerprint = '''SELECT count(*)::text || ':' || coalesce(max(version), 0)::text
                     FROM src_docs WHERE cabinet_id = :cabinet_id'''

    [kinds.note]
    query = '''SELECT id, title, body, tag, price FROM src_docs
               WHERE cabinet_id = :cabinet_id ORDER BY id'''
    id_column = "id"
    template = "{title}\\n\\n{body}"
    metadata = ["tag", "price"]
    """
)

SOURCE_DDL = """
CREATE TABLE src_cabinets (id bigint PRIMARY KEY, active boolean NOT NULL DEFAULT true);
CREATE TABLE src_docs (
    cabinet_id bigint NOT NULL,
    id text NOT NULL,
    title text,
    body text,
    tag text,
    price numeric,
    version integer NOT NULL DEFAULT 1
);
"""


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a Postgres server with pgvector: RAG_TEST_DATABASE_URL, or an embedded one."""
    configured = os.environ.get("RAG_TEST_DATABASE_URL")
    if configured:
        yield str(make_url(configured).set(drivername="postgresql+asyncpg").render_as_string(False))
        return
    yield start_embedded_postgres(tmp_path_factory.mktemp("pg"))


async def _admin(server_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(server_url))


def _with_db(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
async def template_url(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database with the schema migrated and the test source tables, cloned for each test."""
    admin = await _admin(server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    finally:
        await admin.close()
    url = _with_db(server_url, TEMPLATE_DB)
    sources = tmp_path_factory.mktemp("src") / "sources.toml"
    sources.write_text(SOURCE_TOML)
    db = await open_database(load_settings(database_url=url, sources_file=sources))
    await db.close()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(SOURCE_DDL)
    finally:
        await conn.close()
    return url


@pytest.fixture
async def database_url(server_url: str, template_url: str) -> AsyncIterator[str]:
    name = f"rag_test_{uuid.uuid4().hex[:12]}"
    admin = await _admin(server_url)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    finally:
        await admin.close()
    yield _with_db(server_url, name)
    admin = await _admin(server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
def sources_file(tmp_path: Path) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(SOURCE_TOML)
    return path


@pytest.fixture
def settings(database_url: str, sources_file: Path, tmp_path: Path) -> Settings:
    # The smallest embedder: the navec default is covered by tests/indexing/test_navec_embedder.py.
    return load_settings(
        database_url=database_url,
        sources_file=sources_file,
        data_dir=tmp_path / "data",
        embedder="hashing",
        chunk_size_chars=400,
        chunk_overlap_chars=80,
        batch_size_docs=50,
        source_fetch_rows=50,
    )


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    async with open_runtime(settings) as rt:
        yield rt


@pytest.fixture
async def source_conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the test source tables (the service database by default)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    yield conn
    await conn.close()


@pytest.fixture
def ledger(runtime: Runtime) -> Ledger:
    return Ledger(runtime.db.engine)


@pytest.fixture
def worker_settings(settings: Settings) -> Settings:
    """Settings for in-process workers: tiny backoffs so retries take milliseconds."""
    return settings.model_copy(
        update={
            "retry_min_backoff_s": 0.01,
            "retry_max_backoff_s": 0.05,
            "heartbeat_interval_s": 0.1,
            "stale_run_after_s": 1.0,
            "redrive_queued_after_s": 0.5,
        }
    )


@pytest.fixture
def stub_worker(worker_settings: Settings) -> Iterator[dramatiq.Broker]:
    """A StubBroker with our actors and a real in-process Dramatiq worker consuming it."""
    broker = build_broker(worker_settings, allow_stub=True)
    setup_worker(broker, worker_settings)
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=2)
    worker.start()
    yield broker
    worker.stop()
    broker.close()


@pytest.fixture
def dispatcher(
    stub_worker: dramatiq.Broker, ledger: Ledger, worker_settings: Settings
) -> Dispatcher:
    return Dispatcher(stub_worker, ledger, DispatchOptions.from_settings(worker_settings))


@pytest.fixture
def broker_url() -> Iterator[str]:
    """A real Redis database for the test (RAG_TEST_BROKER_URL, default db 15), flushed."""
    with flushed_redis() as url:
        yield url


@pytest.fixture
def worker_env(worker_settings: Settings, broker_url: str) -> dict[str, str]:
    """Environment for `rag-indexer` subprocesses: same database, sources and Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        {
            "RAG_DATABASE_URL": str(worker_settings.database_url),
            "RAG_SOURCES_FILE": str(worker_settings.sources_file),
            "RAG_EMBEDDER": worker_settings.embedder,
            "RAG_DATA_DIR": str(worker_settings.data_dir),
            "RAG_BROKER_URL": broker_url,
            "RAG_CHUNK_SIZE_CHARS": str(worker_settings.chunk_size_chars),
            "RAG_CHUNK_OVERLAP_CHARS": str(worker_settings.chunk_overlap_chars),
            "RAG_BATCH_SIZE_DOCS": str(worker_settings.batch_size_docs),
            "RAG_SOURCE_FETCH_ROWS": str(worker_settings.source_fetch_rows),
            "RAG_RETRY_MIN_BACKOFF_S": "0.05",
            "RAG_RETRY_MAX_BACKOFF_S": "0.2",
            "RAG_HEARTBEAT_INTERVAL_S": "0.2",
            "RAG_STALE_RUN_AFTER_S": "1",
            "RAG_REDRIVE_QUEUED_AFTER_S": "0.5",
        }
    )
    return env


@pytest.fixture
def spawn(worker_env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `rag-indexer ARGS...` subprocesses; all are killed at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(
        *args: str, env: dict[str, str] | None = None, **popen: Any
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("rag-indexer")), *args],
            env=env or worker_env,
            start_new_session=True,
            **popen,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            # The parent only: dramatiq's master forwards SIGTERM to its workers, and a
            # second SIGTERM straight to a worker makes it exit before its event loop stops.
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
