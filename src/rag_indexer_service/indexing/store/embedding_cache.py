"""`EmbeddingCache`: vectors by (embedder id, text hash) in Postgres, shared by every cabinet.

Identical text in another document or cabinet, or a run retried after the embedding API
failed half-way, gets its vectors here instead of from the API. Entries record when they
were last used (touched at most hourly, to keep reads cheap) and `prune()` drops those unused
for too long and, beyond a row budget, the least recently used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rag_indexer_service.indexing.store.rows import driver_connection

__all__ = ["EmbeddingCache"]

# Any constant: cache pruning in all processes serialises on it (the loser skips its turn).
_PRUNE_LOCK_KEY = 7_420_221_004


class EmbeddingCache:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, embedder_id: str, text_hashes: Sequence[str]) -> dict[str, Any]:
        """`text_hash -> vector` for the hashes cached for this embedder."""
        if not text_hashes:
            return {}
        params = {"e": embedder_id, "h": list(text_hashes)}
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT text_hash, embedding, "
                        "last_used_at < now() - interval '1 hour' AS stale "
                        "FROM rag_embedding_cache WHERE embedder_id = :e AND text_hash = ANY(:h)"
                    ),
                    params,
                )
            ).all()
            stale = [r.text_hash for r in rows if r.stale]
            if stale:
                await conn.execute(
                    text(
                        "UPDATE rag_embedding_cache SET last_used_at = now() "
                        "WHERE embedder_id = :e AND text_hash = ANY(:h)"
                    ),
                    {"e": embedder_id, "h": stale},
                )
        return {r.text_hash: r.embedding for r in rows}

    async def put(self, embedder_id: str, vectors: Mapping[str, Any]) -> None:
        """Remember vectors (first writer wins; identical text gives identical vectors)."""
        if not vectors:
            return
        async with self._engine.begin() as conn:
            driver = await driver_connection(conn)
            await driver.executemany(
                "INSERT INTO rag_embedding_cache (embedder_id, text_hash, embedding) "
                "VALUES ($1, $2, $3) ON CONFLICT (embedder_id, text_hash) DO NOTHING",
                [(embedder_id, h, v) for h, v in vectors.items()],
            )

    async def prune(self, *, max_age_s: float, max_rows: int) -> int:
        """Delete entries unused for `max_age_s`, then the least recently used beyond
        `max_rows`. Returns how many went; 0 if another process is pruning right now."""
        async with self._engine.begin() as conn:
            got = await conn.scalar(
                text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _PRUNE_LOCK_KEY}
            )
            if not got:
                return 0
            aged = await conn.execute(
                text(
                    "DELETE FROM rag_embedding_cache "
                    "WHERE last_used_at < now() - make_interval(secs => :age)"
                ),
                {"age": max_age_s},
            )
            count = int(await conn.scalar(text("SELECT count(*) FROM rag_embedding_cache")) or 0)
            over = 0
            if count > max_rows:
                result = await conn.execute(
                    text(
                        "DELETE FROM rag_embedding_cache WHERE ctid IN ("
                        "SELECT ctid FROM rag_embedding_cache ORDER BY last_used_at LIMIT :n)"
                    ),
                    {"n": count - max_rows},
                )
                over = int(result.rowcount)
        return int(aged.rowcount) + over
