"""Fixtures of the fault-injection suite: real processes on the real database and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from rag_indexer_service.db.engine import asyncpg_dsn
from tests.api.conftest import API_KEY, free_port, wait_ready
from tests.conftest import SOURCE_TOML, TEMPLATE_DB, _with_db
from tests.indexing.conftest import MODELS
from tests.indexing.fake_embedding_api import FakeEmbeddingAPI

READ_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class Served:
    base_url: str
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    database_url: str


@pytest.fixture(scope="module")
async def served_api(
    server_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    """One real `rag-indexer api` (uvicorn) per module, with a short read timeout, on a database
    of its own: the probes here only ever reach the HTTP layer."""
    name = f"rag_faults_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    await admin.close()
    tmp = tmp_path_factory.mktemp("served")
    (tmp / "sources.toml").write_text(SOURCE_TOML)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        RAG_DATABASE_URL=_with_db(server_url, name),
        RAG_SOURCES_FILE=str(tmp / "sources.toml"),
        RAG_DATA_DIR=str(tmp / "data"),
        RAG_BROKER_URL=os.environ.get("RAG_TEST_BROKER_URL", "redis://127.0.0.1:6379/15"),
        RAG_API_KEYS=API_KEY,
        RAG_API_READ_TIMEOUT_S=str(READ_TIMEOUT_S),
    )
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("rag-indexer")), "api", "--port", str(port)],
        env=env,
        start_new_session=True,
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        await wait_ready(base_url, proc)
        yield Served(base_url, "127.0.0.1", port, proc, env["RAG_DATABASE_URL"])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        admin = await asyncpg.connect(asyncpg_dsn(server_url))
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


@pytest.fixture
def embedding_api() -> Iterator[FakeEmbeddingAPI]:
    """The real local HTTP server speaking the OpenAI embeddings API (faults on command)."""
    api = FakeEmbeddingAPI(models=dict(MODELS))
    api.start()
    yield api
    api.stop()
