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
TOAST). Lists: one per 500 chunks below 100k chunks (pgvector suggests 1,000); one per 125
from there, at most 2,000: a search then reads fewer vectors for the same recall, for a build
that takes longer (k-means over more centroids). 250k navec chunks, recall@10 of 200 queries
against exact: 1,002 lists, 64 probes (16k vectors) 0.941, 10.7 ms; 2,000 lists, 112 probes
(14k vectors) 0.957, 9.8 ms; the build 37 s against 68-82 s (docs/benchmarks.md). And at least
160 lists of at least 125 chunks: a small cabinet's search reads its 7,000 vectors
(`SearchOptions.probe_vectors`) from the lists nearest the query more finely. 20k chunks,
7,000 vectors read, recall@10, two query sets: 40 lists 0.969 / 0.962, 160 lists 0.978 /
0.970–0.975 (two builds); both build in ~2 s (k-means samples 10,000 vectors either way).

Indexes are built with CREATE INDEX CONCURRENTLY (writes and searches go on) for a generation
at `min_chunks` or more, by `refresh`: a job of its own after the run that left one due
(`state().build_due`), so the run's time and its cabinet lock do not include the build (67 s
at 250k chunks), and searches scan exactly until the index is valid. A rebuild builds the new
generation's before the swap, so it is fast from its first search. A cabinet that grows to
twice the lists of its ANN index (built when it was half its size, or under an older
`ann_lists`) gets one built beside it; the names swap in one transaction (a search uses the
old index or the new one, and reads its lists within `search._TARGET_TTL_S`). Indexes of
generations that are neither active nor building are dropped concurrently, and so is what an
interrupted swap left. A build that failed leaves an invalid index, which searches ignore
(they check `pg_index.indisvalid`; the planner skips invalid ones) and the next refresh
replaces. Nothing here runs in a transaction but the swap: CONCURRENTLY cannot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rag_indexer_service.db.locks import advisory_lock, try_advisory_lock

__all__ = [
    "AnnIndexes",
    "LiveGenerations",
    "SearchIndexState",
    "ann_index_name",
    "ann_lists",
    "text_index_name",
]

log = logging.getLogger(__name__)

_ROWS_PER_LIST = 500
_ROWS_PER_SHORT_LIST = 125
_SHORT_LISTS_FROM = 100_000
_MIN_LISTS = 160
_MIN_ROWS_PER_LIST = 125
_MAX_LISTS = 2000
_BUILD_LOCK = "rag-indexer:search-index-builds"


_ANN_PREFIX = "rag_chunks_ann_"
_FTS_PREFIX = "rag_chunks_fts_"


def ann_index_name(cabinet_id: int, generation: int | str) -> str:
    return f"{_ANN_PREFIX}{int(cabinet_id)}_{generation}"


def ann_lists(rows: int) -> int:
    """The lists of an ANN index over `rows` vectors."""
    per_list = _ROWS_PER_SHORT_LIST if rows >= _SHORT_LISTS_FROM else _ROWS_PER_LIST
    fine = min(_MIN_LISTS, rows // _MIN_ROWS_PER_LIST)
    return max(1, fine, min(_MAX_LISTS, rows // per_list))


def text_index_name(cabinet_id: int, generation: int | str) -> str:
    return f"{_FTS_PREFIX}{int(cabinet_id)}_{generation}"


@dataclass(frozen=True, slots=True)
class LiveGenerations:
    """A cabinet's generations whose indexes `refresh` keeps."""

    build: Mapping[int, int | None]
    """Generation → its chunk count (None: count them): built for when big enough."""
    keep: frozenset[int] = frozenset()
    """Kept, none built: a rebuild still writing (its run builds them before its swap)."""
    active: int | None = None


@dataclass(frozen=True, slots=True)
class SearchIndexState:
    ann_lists: int | None
    """The lists of the active generation's ANN index; None: searches scan exactly (a small
    cabinet, or its index not built yet)."""
    build_due: bool
    """`refresh` has an index to build, rebuild or drop (queued or under way after a run)."""


@dataclass(frozen=True, slots=True)
class _Index:
    name: str
    valid: bool
    lists: int | None


@dataclass(frozen=True, slots=True)
class _Build:
    name: str
    generation: int
    where: str
    rows: int
    vectors: bool
    replaces: bool = False
    """An index of this name exists, with too few lists: build beside it, then swap names."""


@dataclass(frozen=True, slots=True)
class _Plan:
    drops: list[str]
    builds: list[_Build]


class AnnIndexes:
    def __init__(self, engine: AsyncEngine, *, min_chunks: int, build_memory_mb: int = 1024):
        self._engine = engine
        self._min_chunks = min_chunks
        self._build_memory_mb = build_memory_mb

    async def state(self, cabinet_id: int, live: LiveGenerations) -> SearchIndexState:
        """What searches of the active generation use, and whether `refresh` has work."""
        async with self._autocommit() as conn:
            existing = await self._existing(conn, cabinet_id)
            plan = await self._plan(conn, cabinet_id, live, existing)
        index = (
            None if live.active is None else existing.get(ann_index_name(cabinet_id, live.active))
        )
        return SearchIndexState(
            ann_lists=index.lists if index is not None and index.valid else None,
            build_due=bool(plan.drops or plan.builds),
        )

    async def missing(self, cabinet_ids: Sequence[int]) -> set[int]:
        """The cabinets of `cabinet_ids` with `min_chunks` or more in their active generation
        (as `rag_cabinets` counts them) and not both of its indexes valid."""
        sql = text(
            "SELECT c.cabinet_id FROM rag_cabinets c "
            "WHERE c.cabinet_id = ANY(CAST(:ids AS bigint[])) AND c.chunk_count >= :min "
            "AND EXISTS (SELECT 1 FROM unnest(CAST(:prefixes AS text[])) p(prefix) "
            "  WHERE NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indisvalid AND i.indexrelid "
            "    = to_regclass(p.prefix || c.cabinet_id || '_' || c.active_generation)))"
        )
        params = {"ids": list(cabinet_ids), "min": self._min_chunks}
        async with self._engine.connect() as conn:
            found = await conn.scalars(sql, {**params, "prefixes": [_ANN_PREFIX, _FTS_PREFIX]})
            return {int(c) for c in found}

    async def refresh(
        self, cabinet_id: int, live: Callable[[], Awaitable[LiveGenerations]], *, wait: bool
    ) -> list[int] | None:
        """Give each generation `live()` says to build the indexes its size calls for: build
        the missing ones, rebuild an ANN index the cabinet has grown to twice the lists of;
        drop the cabinet's other ones. Returns the generations built for, or None if
        another refresh holds the lock and `wait` is false.

        One refresh at a time in the service (an advisory lock): builds on `rag_chunks`
        cannot overlap anyway (CREATE INDEX CONCURRENTLY and ANALYZE take its SHARE UPDATE
        EXCLUSIVE lock), and two that try deadlock: each waits out the other's snapshot.
        `live()` is read once the lock is held: a refresh that waited sees what the one
        before it, or a rebuild's swap, left."""
        lock = advisory_lock if wait else try_advisory_lock
        async with lock(self._engine, _BUILD_LOCK) as got:
            if got is False:
                return None
            generations = await live()
            async with self._autocommit() as conn:
                plan = await self._plan(
                    conn, cabinet_id, generations, await self._existing(conn, cabinet_id)
                )
                for name in plan.drops:
                    await conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {name}"))
                for build in plan.builds:
                    if build.replaces:
                        await self._replace(conn, build)
                    else:
                        await self._build(conn, build)
                if plan.builds:
                    # The planner takes a cabinet's own indexes only once it knows the
                    # cabinet is big; autovacuum may analyze a big table long after.
                    await conn.execute(text("ANALYZE rag_chunks"))
        return sorted({b.generation for b in plan.builds})

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[AsyncConnection]:
        # CREATE/DROP INDEX CONCURRENTLY cannot run in a transaction
        async with self._engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def _plan(
        self,
        conn: AsyncConnection,
        cabinet_id: int,
        live: LiveGenerations,
        existing: Mapping[str, _Index],
    ) -> _Plan:
        wanted = {
            name_of(cabinet_id, g)
            for g in (*live.build, *live.keep)
            for name_of in (ann_index_name, text_index_name)
        }
        # invalid ones, other generations', and what an interrupted swap left (`_next`, `_old`)
        drops = [i.name for i in existing.values() if not (i.valid and i.name in wanted)]
        builds: list[_Build] = []
        for generation, known_rows in sorted(live.build.items()):
            ann, fts = (
                ann_index_name(cabinet_id, generation),
                text_index_name(cabinet_id, generation),
            )
            missing = [n for n in (ann, fts) if n not in existing or not existing[n].valid]
            lists = existing[ann].lists if ann not in missing else None
            grown = (
                lists is not None and known_rows is not None and ann_lists(known_rows) >= 2 * lists
            )
            if not missing and not grown:
                continue
            where = f"cabinet_id = {int(cabinet_id)} AND generation = {int(generation)}"
            rows = known_rows
            if rows is None:
                rows = await conn.scalar(text(f"SELECT count(*) FROM rag_chunks WHERE {where}"))
            if not rows or rows < self._min_chunks:
                continue
            builds += [
                _Build(
                    name, generation, where, rows, vectors=name == ann, replaces=name not in missing
                )
                for name in (ann, fts)
                if name in missing or (grown and name == ann)
            ]
        return _Plan(drops, builds)

    async def _existing(self, conn: AsyncConnection, cabinet_id: int) -> dict[str, _Index]:
        rows = await conn.execute(
            text(
                "SELECT c.relname, i.indisvalid, (SELECT CAST(o.option_value AS int) "
                "  FROM pg_options_to_table(c.reloptions) o WHERE o.option_name = 'lists') "
                "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = 'rag_chunks'::regclass "
                "  AND (starts_with(c.relname, :ann) OR starts_with(c.relname, :fts))"
            ),
            {"ann": ann_index_name(cabinet_id, ""), "fts": text_index_name(cabinet_id, "")},
        )
        return {name: _Index(name, bool(valid), lists) for name, valid, lists in rows}

    async def _replace(self, conn: AsyncConnection, build: _Build) -> None:
        """Build the index beside the one it replaces, then swap names in one transaction:
        a search sees the old index or the new one, never none."""
        new, old = f"{build.name}_next", f"{build.name}_old"
        if not await self._build(conn, replace(build, name=new)):
            return
        async with self._engine.begin() as tx:
            await tx.execute(text(f"ALTER INDEX {build.name} RENAME TO {old}"))
            await tx.execute(text(f"ALTER INDEX {new} RENAME TO {build.name}"))
        await conn.execute(text(f"DROP INDEX CONCURRENTLY {old}"))

    async def _build(self, conn: AsyncConnection, build: _Build) -> bool:
        if build.vectors:
            dim = await conn.scalar(
                text(f"SELECT vector_dims(embedding) FROM rag_chunks WHERE {build.where} LIMIT 1")
            )
            if dim is None:  # the rows went since they were counted
                return False
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
        return True
