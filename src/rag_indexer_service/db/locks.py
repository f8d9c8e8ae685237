"""`try_advisory_lock()`: a Postgres session-level advisory lock, tried once, held for a block.

The lock lives on a dedicated autocommit connection: released when the block ends or the
process dies, and it never keeps a transaction open while the holder works.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["try_advisory_lock"]


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
