"""Shared fixtures: a real Postgres with pgvector (embedded, or RAG_TEST_DATABASE_URL), one
fresh database per test cloned from a migrated template, and a small SQL source."""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from rag_indexer_service.config import Settings, load_settings
from rag_indexer_service.db.embedded import start_embedded_postgres
from rag_indexer_service.db.engine import asyncpg_dsn, open_database
from rag_indexer_service.runtime import Runtime, open_runtime

TEMPLATE_DB = "rag_test_template"

SOURCE_TOML = textwrap.dedent(
    """
    [cabinets]
    query = "SELECT id AS cabinet_id FROM src_cabinets WHERE active ORDER BY id"
    fingerprint = "SELECT count(*)::text || ':' || coalesce(max(version), 0)::text FROM src_docs WHERE cabinet_id = :cabinet_id"

    [kinds.note]
    query = "SELECT id, title, body, tag, price FROM src_docs WHERE cabinet_id = :cabinet_id ORDER BY id"
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
    return load_settings(
        database_url=database_url,
        sources_file=sources_file,
        data_dir=tmp_path / "data",
        chunk_size_chars=400,
        chunk_overlap_chars=80,
        batch_size_docs=50,
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
