"""`PgVectorStore`: the `IndexStore` on Postgres + pgvector: per-cabinet document ledger,
chunk writes, deletes, generations and hybrid search.

Every write of a batch (chunks and their `rag_documents` rows) happens in one transaction,
so the ledger and the chunks can never disagree. New chunks arrive by binary COPY.

Rows belong to a *generation* of the cabinet's index; searches read the generation
`rag_cabinets.active_generation` names, in the same statement, so a swap (`generations.py`)
is atomic for readers and a search never mixes vectors of two embedders. Whole-cabinet
reads and the purge are in `cabinets.py`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rag_indexer_service.db.locks import try_advisory_lock
from rag_indexer_service.errors import CabinetBusy
from rag_indexer_service.indexing.embedders import Vectors
from rag_indexer_service.indexing.store import cabinets
from rag_indexer_service.indexing.store.ann import AnnIndexes, LiveGenerations, SearchIndexState
from rag_indexer_service.indexing.store.embedding_cache import EmbeddingCache
from rag_indexer_service.indexing.store.generations import (
    STATE_COLUMNS,
    CabinetState,
    GenerationPlan,
    Generations,
)
from rag_indexer_service.indexing.store.keyword_query import KeywordQuery
from rag_indexer_service.indexing.store.protocol import (
    CabinetRecord,
    DocumentWrite,
    IndexTotals,
    SkipState,
    StoredChunk,
)
from rag_indexer_service.indexing.store.rows import RowCounts, delete_rows, driver_connection
from rag_indexer_service.indexing.store.search import (
    SearchCache,
    SearchHit,
    SearchOptions,
    search_chunks,
)
from rag_indexer_service.indexing.store.watermarks import Watermark, Watermarks

__all__ = ["PgVectorStore"]

_CHUNK_COLUMNS = (
    "cabinet_id",
    "generation",
    "kind",
    "doc_id",
    "chunk_no",
    "content",
    "content_hash",
    "metadata",
    "embedding",
)


def _by_kind(keys: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """`[(kind, [doc_id, ...]), ...]` in first-seen order."""
    grouped: dict[str, list[str]] = {}
    for kind, doc_id in keys:
        grouped.setdefault(kind, []).append(doc_id)
    return list(grouped.items())


class PgVectorStore:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        search: SearchOptions | None = None,
        search_engine: AsyncEngine | None = None,
    ) -> None:
        self._engine = engine
        self._search_engine = search_engine or engine.execution_options(
            isolation_level="AUTOCOMMIT"
        )
        self._generations = Generations(engine)
        self._watermarks = Watermarks(engine)
        self._search_options = search or SearchOptions()
        self._search_cache = SearchCache()
        self._search_slots = asyncio.Semaphore(self._search_options.searches_at_once)
        self._searches_under_way = 0
        self._ann = AnnIndexes(engine, min_chunks=self._search_options.ann_min_chunks)

    @asynccontextmanager
    async def cabinet_lock(self, cabinet_id: int) -> AsyncIterator[None]:
        """Hold the cabinet's advisory lock for the block, or raise `CabinetBusy` at once.

        Session-level (`db.locks`): released when the block ends or the process dies, and it
        never keeps a transaction open while the run works.
        """
        async with try_advisory_lock(self._engine, f"rag-indexer:cabinet:{cabinet_id}") as got:
            if not got:
                raise CabinetBusy(cabinet_id)
            yield

    async def prepare_generation(self, cabinet_id: int, embedder_id: str) -> GenerationPlan:
        return await self._generations.prepare(cabinet_id, embedder_id)

    async def activate_generation(
        self, cabinet_id: int, generation: int, *, embedder_id: str, fingerprint: str | None
    ) -> CabinetState:
        return await self._generations.activate(
            cabinet_id, generation, embedder_id=embedder_id, fingerprint=fingerprint
        )

    async def watermarks(self, cabinet_id: int, *, generation: int) -> dict[str, Watermark]:
        return await self._watermarks.read(cabinet_id, generation=generation)

    async def advance_watermarks(
        self,
        cabinet_id: int,
        *,
        generation: int,
        kinds: Sequence[str],
        since: dt.datetime,
        config_digest: str,
        full: bool,
    ) -> None:
        await self._watermarks.advance(
            cabinet_id,
            generation=generation,
            kinds=kinds,
            since=since,
            config_digest=config_digest,
            full=full,
        )

    def embedding_cache(self) -> EmbeddingCache:
        return EmbeddingCache(self._engine)

    async def cabinet_state(self, cabinet_id: int) -> CabinetState | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    text(f"SELECT {STATE_COLUMNS} FROM rag_cabinets WHERE cabinet_id = :c"),
                    {"c": cabinet_id},
                )
            ).first()
        return None if row is None else CabinetState(*row)

    async def document_hashes(
        self, cabinet_id: int, kind: str, doc_ids: Sequence[str], *, generation: int = 0
    ) -> dict[str, tuple[str, str, int]]:
        """`doc_id -> (content_hash, meta_hash, chunk_count)` for those already indexed."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT doc_id, content_hash, meta_hash, chunk_count FROM rag_documents "
                    "WHERE cabinet_id = :c AND generation = :g AND kind = :k "
                    "AND doc_id = ANY(:ids)"
                ),
                {"c": cabinet_id, "g": generation, "k": kind, "ids": list(doc_ids)},
            )
            return {r[0]: (r[1], r[2], r[3]) for r in rows}

    async def chunk_vectors(
        self, cabinet_id: int, kind: str, doc_ids: Sequence[str], *, generation: int = 0
    ) -> dict[str, Any]:
        """`content_hash -> embedding` of the current chunks of these documents (for reuse)."""
        if not doc_ids:
            return {}
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT content_hash, embedding FROM rag_chunks WHERE cabinet_id = :c "
                    "AND generation = :g AND kind = :k AND doc_id = ANY(:ids)"
                ),
                {"c": cabinet_id, "g": generation, "k": kind, "ids": list(doc_ids)},
            )
            return {r[0]: r[1] for r in rows}

    async def write_batch(
        self, cabinet_id: int, writes: Sequence[DocumentWrite], *, generation: int = 0
    ) -> None:
        """Replace the chunks of rewritten documents, update metadata-only ones, upsert ledger."""
        if not writes:
            return
        rewritten = [w for w in writes if w.chunks is not None]
        meta_only = [w for w in writes if w.chunks is None]
        async with self._engine.begin() as conn:
            # `doc_id = ANY(…)` per kind walks the primary key; a join with unnest() would read
            # every chunk of the cabinet for each batch (quadratic over a full index).
            for kind, doc_ids in _by_kind((w.kind, w.doc_id) for w in rewritten) or [("", [])]:
                await conn.execute(
                    text(
                        "DELETE FROM rag_chunks WHERE cabinet_id = :c AND generation = :g "
                        "AND kind = :k AND doc_id = ANY(CAST(:ids AS text[]))"
                    ),
                    {"c": cabinet_id, "g": generation, "k": kind, "ids": doc_ids},
                )
            records = [
                (
                    cabinet_id,
                    generation,
                    w.kind,
                    w.doc_id,
                    ch.chunk_no,
                    ch.content,
                    ch.content_hash,
                    json.dumps(w.metadata, ensure_ascii=False),
                    ch.embedding,
                )
                for w in rewritten
                for ch in w.chunks or ()
            ]
            if records:
                driver = await driver_connection(conn)
                await driver.copy_records_to_table(
                    "rag_chunks", records=records, columns=_CHUNK_COLUMNS
                )
            for kind in dict.fromkeys(w.kind for w in meta_only):
                same = [w for w in meta_only if w.kind == kind]
                await conn.execute(
                    text(
                        "UPDATE rag_chunks c SET metadata = CAST(d.meta AS jsonb) "
                        "FROM unnest(CAST(:ids AS text[]), CAST(:metas AS text[])) "
                        "AS d(doc_id, meta) WHERE c.cabinet_id = :c AND c.generation = :g "
                        "AND c.kind = :k AND c.doc_id = ANY(CAST(:ids AS text[])) "
                        "AND c.doc_id = d.doc_id"
                    ),
                    {
                        "c": cabinet_id,
                        "g": generation,
                        "k": kind,
                        "ids": [w.doc_id for w in same],
                        "metas": [json.dumps(w.metadata, ensure_ascii=False) for w in same],
                    },
                )
            await conn.execute(
                text(
                    "INSERT INTO rag_documents AS d (cabinet_id, generation, kind, doc_id, "
                    "content_hash, meta_hash, chunk_count, indexed_at) "
                    "SELECT :c, :g, kind, doc_id, content_hash, meta_hash, "
                    "COALESCE(chunk_count, -1), now() "
                    "FROM unnest(CAST(:kinds AS text[]), CAST(:ids AS text[]), "
                    "CAST(:chs AS text[]), CAST(:mhs AS text[]), CAST(:counts AS int[])) "
                    "AS u(kind, doc_id, content_hash, meta_hash, chunk_count) "
                    "ON CONFLICT (cabinet_id, generation, kind, doc_id) DO UPDATE SET "
                    "content_hash = EXCLUDED.content_hash, meta_hash = EXCLUDED.meta_hash, "
                    "chunk_count = CASE WHEN EXCLUDED.chunk_count < 0 "
                    "THEN d.chunk_count ELSE EXCLUDED.chunk_count END, "
                    "indexed_at = now()"
                ),
                {
                    "c": cabinet_id,
                    "g": generation,
                    "kinds": [w.kind for w in writes],
                    "ids": [w.doc_id for w in writes],
                    "chs": [w.content_hash for w in writes],
                    "mhs": [w.meta_hash for w in writes],
                    "counts": [None if w.chunks is None else len(w.chunks) for w in writes],
                },
            )

    async def indexed_documents(
        self, cabinet_id: int, *, generation: int = 0
    ) -> dict[str, tuple[list[str], list[int]]]:
        """Per kind, every indexed `doc_id` of the cabinet's generation and its chunk count.
        One array per column: a Postgres array crosses as one value, rows one by one."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT kind, array_agg(doc_id), array_agg(chunk_count) FROM rag_documents "
                    "WHERE cabinet_id = :c AND generation = :g GROUP BY kind"
                ),
                {"c": cabinet_id, "g": generation},
            )
            return {kind: (ids, counts) for kind, ids, counts in rows}

    async def delete_documents(
        self, cabinet_id: int, keys: Sequence[tuple[str, str]], *, generation: int = 0
    ) -> int:
        """Delete documents and their chunks in one transaction; returns chunks deleted."""
        if not keys:
            return 0
        deleted = 0
        async with self._engine.begin() as conn:
            for kind, doc_ids in _by_kind(keys):
                counts = await delete_rows(
                    conn, cabinet_id, generation=generation, kind=kind, doc_ids=doc_ids
                )
                deleted += counts.chunks
        return deleted

    async def save_cabinet_state(
        self,
        cabinet_id: int,
        *,
        embedder_id: str,
        fingerprint: str | None,
        success: bool,
        generation: int = 0,
        counts: tuple[int, int] | None = None,
    ) -> CabinetState:
        """Record a finished run in the active generation `generation`, with its document and
        chunk `counts` (counted in the ledger when not given)."""
        if counts is None:
            counted = (
                "SELECT :c, :e, :f, count(*), COALESCE(sum(chunk_count), 0), now(), "
                "CASE WHEN :ok THEN now() END "
                "FROM rag_documents WHERE cabinet_id = :c AND generation = :g "
            )
        else:
            counted = "SELECT :c, :e, :f, :docs, :chunks, now(), CASE WHEN :ok THEN now() END "
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    text(
                        "INSERT INTO rag_cabinets AS c (cabinet_id, embedder_id, "
                        "source_fingerprint, document_count, chunk_count, last_indexed_at, "
                        "last_success_at) "
                        f"{counted}"
                        "ON CONFLICT (cabinet_id) DO UPDATE SET "
                        "embedder_id = EXCLUDED.embedder_id, "
                        "source_fingerprint = EXCLUDED.source_fingerprint, "
                        "document_count = EXCLUDED.document_count, "
                        "chunk_count = EXCLUDED.chunk_count, "
                        "last_indexed_at = EXCLUDED.last_indexed_at, "
                        "last_success_at = COALESCE(EXCLUDED.last_success_at, c.last_success_at) "
                        f"RETURNING {STATE_COLUMNS}"
                    ),
                    {
                        "c": cabinet_id,
                        "e": embedder_id,
                        "f": fingerprint,
                        "ok": success,
                        "g": generation,
                        "docs": None if counts is None else counts[0],
                        "chunks": None if counts is None else counts[1],
                    },
                )
            ).one()
        return CabinetState(*row)

    async def mark_unchanged(self, cabinet_id: int) -> None:
        """A run found the cabinet unchanged: it succeeded now, with nothing to write."""
        async with self._engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE rag_cabinets SET last_indexed_at = now(), last_success_at = now() "
                    "WHERE cabinet_id = :c"
                ),
                {"c": cabinet_id},
            )

    async def search(
        self,
        cabinet_id: int,
        *,
        query_text: str,
        query_vector: Vectors,
        k: int,
        candidates: int = 50,
        embedder_id: str | None = None,
        min_similarity: float | None = None,
        keyword_query: KeywordQuery | None = None,
    ) -> list[SearchHit]:
        """Hybrid search in the cabinet's active generation (see `search.search_chunks`)."""
        async with self._search_slots:
            self._searches_under_way += 1
            try:
                return await search_chunks(
                    self._search_engine,
                    cabinet_id,
                    query_text=query_text,
                    query_vector=query_vector,
                    k=k,
                    candidates=candidates,
                    embedder_id=embedder_id,
                    min_similarity=min_similarity,
                    options=self._search_options,
                    keyword_query=keyword_query,
                    cache=self._search_cache,
                    # alone, it has the cores to itself; with others, they are busy anyway
                    at_once=self._searches_under_way == 1,
                )
            finally:
                self._searches_under_way -= 1

    async def refresh_ann_index(
        self, cabinet_id: int, *, building: bool = False, wait: bool = True
    ) -> list[int] | None:
        return await self._ann.refresh(
            cabinet_id, partial(self._live_generations, cabinet_id, building=building), wait=wait
        )

    async def missing_search_indexes(self, cabinet_ids: Sequence[int]) -> set[int]:
        return await self._ann.missing(cabinet_ids)

    async def search_index_state(self, cabinet_id: int) -> SearchIndexState:
        return await self._ann.state(cabinet_id, await self._live_generations(cabinet_id))

    async def _live_generations(
        self, cabinet_id: int, *, building: bool = False
    ) -> LiveGenerations:
        """The active generation, with the state's chunk count; a building one's indexes
        built too if `building`, else only kept."""
        state = await self.cabinet_state(cabinet_id)
        if state is None:
            return LiveGenerations(build={})
        build: dict[int, int | None] = {state.active_generation: state.chunk_count}
        rebuild = state.building_generation
        if rebuild is not None and building:
            build[rebuild] = None
        keep = frozenset(() if rebuild is None or building else (rebuild,))
        return LiveGenerations(build=build, keep=keep, active=state.active_generation)

    # -- cabinets as a whole (`cabinets.py`) -----------------------------------------------
    async def cabinet_record(self, cabinet_id: int) -> CabinetRecord | None:
        async with self._engine.connect() as conn:
            return await cabinets.cabinet_record(conn, cabinet_id)

    async def cabinet_records(self, cabinet_ids: Sequence[int]) -> dict[int, CabinetRecord]:
        async with self._engine.connect() as conn:
            return await cabinets.cabinet_records(conn, cabinet_ids)

    async def skip_states(self, cabinet_ids: Sequence[int]) -> dict[int, SkipState]:
        async with self._engine.connect() as conn:
            return await cabinets.skip_states(conn, cabinet_ids)

    async def indexed_cabinet_ids(self) -> list[int]:
        async with self._engine.connect() as conn:
            return await cabinets.indexed_cabinet_ids(conn)

    async def drop_cabinet(self, cabinet_id: int) -> RowCounts:
        async with self._engine.begin() as conn:
            return await cabinets.drop_cabinet(conn, cabinet_id)

    async def index_totals(self) -> IndexTotals:
        async with self._engine.connect() as conn:
            return await cabinets.index_totals(conn)

    async def row_counts(self, cabinet_id: int) -> RowCounts:
        async with self._engine.connect() as conn:
            return await cabinets.row_counts(conn, cabinet_id)

    async def chunks(self, cabinet_id: int) -> list[StoredChunk]:
        async with self._engine.connect() as conn:
            return await cabinets.chunks(conn, cabinet_id)
