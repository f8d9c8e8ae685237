"""Indexes of their own for big cabinets: per (cabinet, generation) an IVFFlat index on the
vectors and a GIN index on the full text, both partial to that cabinet's rows.

`rag_chunks.embedding` has no fixed dimension (an embedder change needs no migration), so the
vector index is on the expression `embedding::halfvec(dim)` (half the size of `vector`, and
the dimension every row of one generation shares) and partial: `WHERE cabinet_id = c AND
generation = g`. It holds only that cabinet's rows, so a search needs no filter (no
post-filtering recall loss) and writes into other cabinets never touch it. Small cabinets
get none: an exact scan through the primary key prefix is fast and exact for them.

The full-text index covers all cabinets: the posting list of a common word spans the whole
table (every seller sells "товар"), and a search had to AND it with the primary-key range of
its cabinet (`btree_gin`, which would put the cabinet into the GIN key, is not in the
embedded Postgres). The partial GIN index of a big cabinet holds its own postings only, so a
common word costs what the cabinet holds, not what the table holds.

IVFFlat, not HNSW: on this service's vectors an HNSW build cost ~0.8 ms a vector and an
insert into a built graph ~3 ms (measured, see docs/benchmarks.md), several times the whole
indexing cost of a chunk, and its walk found too few true neighbours (pgvector's defaults,
ef_search 100: recall@10 0.59-0.78 against IVFFlat's 0.97-0.99; 0.96 only at ef_search 1,000,
as slow as IVFFlat). IVFFlat builds in a fraction of that, an insert is one pass over
the list centroids, and a search reads `probes` contiguous lists of halfvecs (no heap, no
TOAST). Lists: one per 500 chunks below 100k chunks (pgvector suggests 1,000); one per 250
from there: a search then reads fewer vectors for the same recall (250k navec chunks, recall@10
≈ 0.96: 96 of 1,000 lists, 24k vectors, against 48 of 250, 48k), for a build that takes ~4×
as long (k-means over more centroids). And at least 160 lists of at least 125 chunks: a small
cabinet's search reads its 7,000 vectors (`SearchOptions.probe_vectors`) from the lists
nearest the query more finely. 20k chunks, 7,000 vectors read, recall@10, two query sets:
40 lists 0.969 / 0.962, 160 lists 0.978 / 0.970–0.975 (two builds); both build in ~2 s
(k-means samples 10,000 vectors either way).

Indexes are built with CREATE INDEX CONCURRENTLY (writes and searches go on) for a generation
at `min_chunks` or more, by `refresh`: a job of its own after the run that left one due
(`due`), so the run's time and its cabinet lock do not include the build (~37 s at 250k
chunks), and searches scan exactly until the index is valid. A rebuild builds the new
generation's before the swap, so it is fast from its first search. Indexes of generations
that are neither active nor building are dropped concurrently. A build that failed leaves an
invalid index, which searches ignore (they check `pg_index.indisvalid`; the planner skips
invalid ones) and the next refresh replaces. Nothing here runs in a transaction:
CONCURRENTLY cannot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rag_indexer_service.db.locks import advisory_lock

__all__ = ["AnnIndexes", "ann_index_name", "ann_lists", "text_index_name"]

log = logging.getLogger(__name__)

_ROWS_PER_LIST = 500
_ROWS_PER_SHORT_LIST = 250
_SHORT_LISTS_FROM = 100_000
_MIN_LISTS = 160
_MIN_ROWS_PER_LIST = 125
_MAX_LISTS = 2000
_BUILD_LOCK = "rag-indexer:search-index-builds"


def ann_index_name(cabinet_id: int, generation: int | str) -> str:
    return f"rag_chunks_ann_{int(cabinet_id)}_{generation}"


def ann_lists(rows: int) -> int:
    """The lists of an ANN index over `rows` vectors."""
    per_list = _ROWS_PER_SHORT_LIST if rows >= _SHORT_LISTS_FROM else _ROWS_PER_LIST
    fine = min(_MIN_LISTS, rows // _MIN_ROWS_PER_LIST)
    return max(1, fine, min(_MAX_LISTS, rows // per_list))


def text_index_name(cabinet_id: int, generation: int | str) -> str:
    return f"rag_chunks_fts_{int(cabinet_id)}_{generation}"


@dataclass(frozen=True, slots=True)
class _Build:
    name: str
    generation: int
    where: str
    rows: int
    vectors: bool


@dataclass(frozen=True, slots=True)
class _Plan:
    drops: list[str]
    builds: list[_Build]


class AnnIndexes:
    def __init__(self, engine: AsyncEngine, *, min_chunks: int, build_memory_mb: int = 1024):
        self._engine = engine
        self._min_chunks = min_chunks
        self._build_memory_mb = build_memory_mb

    async def due(self, cabinet_id: int, generations: Iterable[int]) -> bool:
        """Whether `refresh` has an index to build or drop (one being built counts)."""
        async with self._autocommit() as conn:
            plan = await self._plan(conn, cabinet_id, set(generations))
        return bool(plan.drops or plan.builds)

    async def refresh(self, cabinet_id: int, generations: Iterable[int]) -> list[int]:
        """Build the missing indexes of each of `generations` that is big enough; drop the
        cabinet's other ones. Returns the generations an index was built for.

        One refresh at a time in the service (an advisory lock): another waits for it, then
        finds what it built. Builds on `rag_chunks` cannot overlap anyway (CREATE INDEX
        CONCURRENTLY and ANALYZE take its SHARE UPDATE EXCLUSIVE lock), and two that try
        deadlock: each waits out the other's snapshot."""
        keep = set(generations)
        async with (
            advisory_lock(self._engine, _BUILD_LOCK),
            self._autocommit() as conn,
        ):
            plan = await self._plan(conn, cabinet_id, keep)
            for name in plan.drops:
                await conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {name}"))
            for build in plan.builds:
                await self._build(conn, build)
            if plan.builds:
                # The planner takes a cabinet's own indexes only once it knows the cabinet
                # is big; autovacuum may analyze a big table long after the rows came.
                await conn.execute(text("ANALYZE rag_chunks"))
        return sorted({b.generation for b in plan.builds})

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[AsyncConnection]:
        # CREATE/DROP INDEX CONCURRENTLY cannot run in a transaction
        async with self._engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def _plan(self, conn: AsyncConnection, cabinet_id: int, keep: set[int]) -> _Plan:
        existing = {
            name_of: await self._existing(conn, name_of(cabinet_id, ""))
            for name_of in (ann_index_name, text_index_name)
        }
        drops = [
            name_of(cabinet_id, generation)
            for name_of, indexes in existing.items()
            for generation, valid in indexes.items()
            if generation not in keep or not valid
        ]
        builds: list[_Build] = []
        for generation in sorted(keep):
            missing = [n for n, indexes in existing.items() if not indexes.get(generation)]
            if not missing:
                continue
            where = f"cabinet_id = {int(cabinet_id)} AND generation = {int(generation)}"
            rows = await conn.scalar(text(f"SELECT count(*) FROM rag_chunks WHERE {where}"))
            if rows and rows >= self._min_chunks:
                builds += [
                    _Build(
                        name_of(cabinet_id, generation),
                        generation,
                        where,
                        rows,
                        vectors=name_of is ann_index_name,
                    )
                    for name_of in missing
                ]
        return _Plan(drops, builds)

    async def _existing(self, conn: AsyncConnection, prefix: str) -> dict[int, bool]:
        rows = await conn.execute(
            text(
                "SELECT substr(c.relname, length(:p) + 1), i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = 'rag_chunks'::regclass AND starts_with(c.relname, :p)"
            ),
            {"p": prefix},
        )
        return {int(gen): bool(valid) for gen, valid in rows if gen.isdigit()}

    async def _build(self, conn: AsyncConnection, build: _Build) -> None:
        if build.vectors:
            dim = await conn.scalar(
                text(f"SELECT vector_dims(embedding) FROM rag_chunks WHERE {build.where} LIMIT 1")
            )
            lists = ann_lists(build.rows)
            how = (
                f"ivfflat ((CAST(embedding AS halfvec({int(dim)}))) halfvec_cosine_ops) "
                f"WITH (lists = {lists})"
            )
            what = f"{dim} dimensions, {lists} lists"
        else:
            how, what = "gin (tsv)", "full text"
        started = time.perf_counter()
        await conn.execute(text(f"SET maintenance_work_mem = '{int(self._build_memory_mb)}MB'"))
        try:
            await conn.execute(
                text(
                    f"CREATE INDEX CONCURRENTLY {build.name} ON rag_chunks USING {how} "
                    f"WHERE {build.where}"
                )
            )
        finally:
            await conn.execute(text("RESET maintenance_work_mem"))
        log.info(
            "%s built (%s chunks, %s) in %.1f s",
            build.name,
            build.rows,
            what,
            time.perf_counter() - started,
        )
