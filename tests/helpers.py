"""Plain helpers shared by test modules (fixtures live in the conftest files). A test module
imports helpers from here, never from another test module.

`add_cabinet` fills the small SQL source whose tables `tests/conftest.py` creates
(`src_cabinets`, `src_docs`); `rag` runs the installed `rag-indexer` console script;
`flat_routes` lists an app's routes with included routers expanded.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis
from starlette.routing import BaseRoute

from rag_indexer_service.runs import Ledger, Run

RAG = str(Path(sys.executable).with_name("rag-indexer"))


def rag(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `rag-indexer *args` with exactly `env`; the result, whatever the exit code."""
    return subprocess.run(
        [RAG, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


SCHEDULERS = [  # (id, heartbeat age, stopped): the default reaper interval is 60 s
    ("beating:1", dt.timedelta(seconds=1), False),
    ("silent:2", dt.timedelta(minutes=10), False),
    ("stopped:3", dt.timedelta(seconds=5), True),
]


async def add_schedulers(conn: asyncpg.Connection) -> None:
    """Three scheduler replicas in `rag_scheduler_heartbeats`: beating, silent, stopped."""
    await conn.executemany(
        "INSERT INTO rag_scheduler_heartbeats (scheduler_id, heartbeat_at, stopped_at) "
        "VALUES ($1, now() - $2::interval, CASE WHEN $3 THEN now() - interval '2 s' END)",
        SCHEDULERS,
    )


def flat_routes(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """`app.routes`, with included routers expanded (newer FastAPI keeps them nested)."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from flat_routes(nested.routes)
        else:
            yield route


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
