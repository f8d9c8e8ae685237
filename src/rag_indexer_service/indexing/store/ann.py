"""ANN indexes for big cabinets: one IVFFlat index per (cabinet, generation), partial to its rows.

`rag_chunks.embedding` has no fixed dimension (an embedder change needs no migration), so the
index is on the expression `embedding::halfvec(dim)` (half the size of `vector`, and the
dimension every row of one generation shares) and partial: `WHERE cabinet_id = c AND
generation = g`. It holds only that cabinet's rows, so a search needs no filter (no
post-filtering recall loss) and writes into other cabinets never touch it. Small cabinets
get none: an exact scan through the primary key prefix is fast and exact for them.

IVFFlat, not HNSW: on this service's vectors an HNSW build cost ~0.8 ms a vector and an
insert into a built graph ~3 ms (measured, see docs/benchmarks.md), several times the whole
indexing cost of a chunk; IVFFlat builds in a fraction of that, an insert is one pass over
the list centroids, and a search reads `probes` contiguous lists of halfvecs (no heap, no
TOAST). Lists: one per 1,000 chunks, as pgvector recommends.

Indexes are built with CREATE INDEX CONCURRENTLY (writes and searches go on) by the run that
leaves a generation at `min_chunks` or more: for a rebuild before the swap, so the new
generation is fast from its first search. Indexes of generations that are neither active nor
building are dropped concurrently. A build that failed leaves an invalid index, which
searches ignore (they check `pg_index.indisvalid`) and the next refresh replaces.
Nothing here runs in a transaction: CONCURRENTLY cannot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["AnnIndexes", "ann_index_name"]

log = logging.getLogger(__name__)

_ROWS_PER_LIST = 1000
_MAX_LISTS = 4000


def ann_index_name(cabinet_id: int, generation: int | str) -> str:
    return f"rag_chunks_ann_{int(cabinet_id)}_{generation}"


class AnnIndexes:
    def __init__(self, engine: AsyncEngine, *, min_chunks: int, build_memory_mb: int = 1024):
        self._engine = engine
        self._min_chunks = min_chunks
        self._build_memory_mb = build_memory_mb

    async def refresh(self, cabinet_id: int, generations: Iterable[int]) -> list[int]:
        """Build the missing index of each of `generations` that is big enough; drop the
        cabinet's other ANN indexes. Returns the generations whose index was built."""
        keep = set(generations)
        built: list[int] = []
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            existing = await self._existing(conn, cabinet_id)
            for generation, valid in existing.items():
                if generation not in keep or not valid:
                    await conn.execute(
                        text(
                            "DROP INDEX CONCURRENTLY IF EXISTS "
                            f"{ann_index_name(cabinet_id, generation)}"
                        )
                    )
            for generation in sorted(keep):
                if existing.get(generation):
                    continue
                if await self._build(conn, cabinet_id, generation):
                    built.append(generation)
        return built

    async def _existing(self, conn: AsyncConnection, cabinet_id: int) -> dict[int, bool]:
        prefix = ann_index_name(cabinet_id, "")
        rows = await conn.execute(
            text(
                "SELECT substr(c.relname, length(:p) + 1), i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = 'rag_chunks'::regclass AND starts_with(c.relname, :p)"
            ),
            {"p": prefix},
        )
        return {int(gen): bool(valid) for gen, valid in rows if gen.isdigit()}

    async def _build(self, conn: AsyncConnection, cabinet_id: int, generation: int) -> bool:
        where = f"cabinet_id = {int(cabinet_id)} AND generation = {int(generation)}"
        rows = await conn.scalar(text(f"SELECT count(*) FROM rag_chunks WHERE {where}"))
        if not rows or rows < self._min_chunks:
            return False
        dim = await conn.scalar(
            text(f"SELECT vector_dims(embedding) FROM rag_chunks WHERE {where} LIMIT 1")
        )
        lists = max(1, min(_MAX_LISTS, rows // _ROWS_PER_LIST))
        started = time.perf_counter()
        await conn.execute(text(f"SET maintenance_work_mem = '{int(self._build_memory_mb)}MB'"))
        try:
            await conn.execute(
                text(
                    f"CREATE INDEX CONCURRENTLY {ann_index_name(cabinet_id, generation)} "
                    f"ON rag_chunks USING ivfflat ((CAST(embedding AS halfvec({int(dim)}))) "
                    f"halfvec_cosine_ops) WITH (lists = {lists}) WHERE {where}"
                )
            )
        finally:
            await conn.execute(text("RESET maintenance_work_mem"))
        log.info(
            "cabinet %s: ANN index of generation %s built (%s chunks, %s dimensions, %s lists) "
            "in %.1f s",
            cabinet_id,
            generation,
            rows,
            dim,
            lists,
            time.perf_counter() - started,
        )
        return True
