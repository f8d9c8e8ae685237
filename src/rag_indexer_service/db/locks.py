"""Postgres session-level advisory locks, held for a block: `try_advisory_lock()` tries once,
`advisory_lock()` tries until it gets it.

The lock lives on a dedicated autocommit connection: released when the block ends or the
process dies, and it never keeps a transaction open while the holder works.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["advisory_lock", "try_advisory_lock"]


@asynccontextmanager
async def try_advisory_lock(engine: AsyncEngine, key: str) -> AsyncIterator[bool]:
    """Yields True while holding the lock named `key`, False (at once) if another holds it."""
    params = {"key": key}
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        got = bool(
            await conn.scalar(
                text("SELECT pg_try_advisory_lock(hashtextextended(:key, 0))"), params
            )
        )
        if not got:
            yield False
            return
        try:
            yield True
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"), params)


@asynccontextmanager
async def advisory_lock(
    engine: AsyncEngine, key: str, *, poll_s: float = 0.5
) -> AsyncIterator[None]:
    """Holds the lock named `key` for the block, once whoever holds it has let go.

    It tries every `poll_s` instead of waiting in `pg_advisory_lock`: a statement waiting
    that long holds a snapshot, which a holder's CREATE INDEX CONCURRENTLY would wait out.
    """
    while True:
        async with try_advisory_lock(engine, key) as got:
            if got:
                yield
                return
        await asyncio.sleep(poll_s)
