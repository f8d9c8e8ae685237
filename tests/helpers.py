"""Plain helpers shared by test modules (fixtures live in the conftest files).

`add_cabinet` fills the small SQL source whose tables `tests/conftest.py` creates
(`src_cabinets`, `src_docs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator

import asyncpg
import pytest
import redis

from rag_indexer_service.runs import Ledger, Run


async def add_cabinet(conn: asyncpg.Connection, cabinet_id: int, docs: int = 0) -> None:
    """Add source cabinet `cabinet_id` with `docs` documents `d0`, `d1`, …"""
    await conn.execute("INSERT INTO src_cabinets (id) VALUES ($1)", cabinet_id)
    await conn.executemany(
        "INSERT INTO src_docs (cabinet_id, id, title, body, tag, price) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (
                cabinet_id,
                f"d{n}",
                f"Товар {n}",
                f"Описание товара номер {n}. Хорошее качество.",
                "a",
                n,
            )
            for n in range(docs)
        ],
    )


async def wait_for_run(
    ledger: Ledger,
    run_id: int,
    statuses: tuple[str, ...] = ("succeeded", "failed"),
    timeout_s: float = 30,
) -> Run:
    """Poll the ledger until the run reaches one of `statuses`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        run = await ledger.get(run_id)
        assert run is not None, f"run {run_id} does not exist"
        if run.status in statuses:
            return run
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run {run_id} still {run.status} after {timeout_s}s: {run}")
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def flushed_redis() -> Iterator[str]:
    """The URL of a real Redis database (RAG_TEST_BROKER_URL, default db 15), flushed before
    and after use."""
    url = os.environ.get("RAG_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
    client = redis.Redis.from_url(url)
    try:
        try:
            client.flushdb()
        except redis.ConnectionError as exc:
            pytest.fail(f"Redis is not reachable at {url} ({exc}); scripts/test starts one")
        yield url
        client.flushdb()
    finally:
        client.close()
