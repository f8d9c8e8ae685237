"""`RunReader`: the run-status read path, on a plain asyncpg pool.

`GET /rag/runs/{run_id}` is what callers poll. Through SQLAlchemy's async engine (pre-ping,
implicit BEGIN/ROLLBACK, greenlet hops) one such read cost ~1.5 ms of CPU on the reference
machine; on asyncpg directly it is ~0.2 ms. Writes and every other read stay on the `Ledger`.
The API opens it; it lives with the ledger because it reads the ledger's table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from rag_indexer_service.db.engine import asyncpg_dsn, database_errors
from rag_indexer_service.runs.model import Run

__all__ = ["RunReader"]


@dataclass(frozen=True, slots=True)
class _Row:
    """What `Run.from_row` reads (`row._mapping[...]`), over an asyncpg record."""

    _mapping: Any


async def _codecs(conn: asyncpg.Connection) -> None:
    """jsonb as Python values, like the SQLAlchemy engine the `Ledger` reads through."""
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class RunReader:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, database_url: str, *, max_size: int) -> RunReader:
        """A pool of at most `max_size` connections; connects lazily, one at first."""
        pool = await asyncpg.create_pool(
            asyncpg_dsn(database_url), min_size=0, max_size=max_size, timeout=10, init=_codecs
        )
        return cls(pool)

    async def get(self, run_id: int) -> Run | None:
        with database_errors("service database unreachable"):
            async with self._pool.acquire() as conn:
                record = await conn.fetchrow("SELECT * FROM rag_runs WHERE id = $1", run_id)
        return None if record is None else Run.from_row(_Row(record))

    async def close(self) -> None:
        await self._pool.close()
