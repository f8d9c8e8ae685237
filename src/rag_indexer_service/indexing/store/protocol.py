"""`IndexStore`: the store's public surface, which the indexer, the fan-out, the ledger and the
front ends depend on; `PgVectorStore` (`pgvector.py`) is the one implementation today.

The data types that cross the surface live here too, so a second store imports nothing from
the first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from rag_indexer_service.indexing.embedders import Vectors
from rag_indexer_service.indexing.store.ann import SearchIndexState
from rag_indexer_service.indexing.store.generations import CabinetState, GenerationPlan
from rag_indexer_service.indexing.store.keyword_query import KeywordQuery
from rag_indexer_service.indexing.store.rows import RowCounts
from rag_indexer_service.indexing.store.search import SearchHit
from rag_indexer_service.indexing.store.watermarks import Watermark

__all__ = [
    "CabinetRecord",
    "CabinetState",
    "ChunkRow",
    "DocumentWrite",
    "GenerationPlan",
    "IndexStore",
    "IndexTotals",
    "RowCounts",
    "SearchHit",
    "SkipState",
    "StoredChunk",
    "VectorCache",
    "Watermark",
]


@dataclass(frozen=True, slots=True)
class ChunkRow:
    chunk_no: int
    content: str
    content_hash: str
    embedding: Any


@dataclass(frozen=True, slots=True)
class DocumentWrite:
    """A document whose chunks are (re)written, or whose metadata alone changed (`chunks=None`)."""

    kind: str
    doc_id: str
    content_hash: str
    meta_hash: str
    metadata: dict[str, Any]
    chunks: Sequence[ChunkRow] | None


@dataclass(frozen=True, slots=True)
class CabinetRecord:
    """A cabinet's index state as operators see it, staleness by the database clock."""

    cabinet_id: int
    embedder_id: str | None
    source_fingerprint: str | None
    document_count: int
    chunk_count: int
    last_indexed_at: dt.datetime | None
    last_success_at: dt.datetime | None
    staleness_s: float | None
    last_run_id: int | None


@dataclass(frozen=True, slots=True)
class SkipState:
    """What the fan-out compares to decide whether a cabinet can be skipped."""

    fingerprint: str | None
    embedder_id: str | None
    last_run_id: int | None


@dataclass(frozen=True, slots=True)
class IndexTotals:
    cabinets_indexed: int
    """Cabinets with at least one successful run."""
    documents: int
    chunks: int


@dataclass(frozen=True, slots=True)
class StoredChunk:
    generation: int
    kind: str
    doc_id: str
    chunk_no: int
    content: str
    embedding: Any


class VectorCache(Protocol):
    """Vectors by (embedder id, text hash), shared by every cabinet."""

    async def get(self, embedder_id: str, text_hashes: Sequence[str]) -> dict[str, Any]: ...

    async def put(self, embedder_id: str, vectors: Mapping[str, Any]) -> None: ...

    async def prune(self, *, max_age_s: float, max_rows: int) -> int: ...


class IndexStore(Protocol):
    """Per-cabinet document ledger, chunks, generations and search. Generation 0 is the default."""

    # -- runs of the indexer ---------------------------------------------------------------
    def cabinet_lock(self, cabinet_id: int) -> AbstractAsyncContextManager[None]:
        """Held for a run; raises `CabinetBusy` at once if another process holds it."""
        ...

    async def cabinet_state(self, cabinet_id: int) -> CabinetState | None: ...

    async def prepare_generation(self, cabinet_id: int, embedder_id: str) -> GenerationPlan: ...

    async def activate_generation(
        self, cabinet_id: int, generation: int, *, embedder_id: str, fingerprint: str | None
    ) -> CabinetState: ...

    async def document_hashes(
        self, cabinet_id: int, kind: str, doc_ids: Sequence[str], *, generation: int = 0
    ) -> dict[str, tuple[str, str, int]]: ...

    async def chunk_vectors(
        self, cabinet_id: int, kind: str, doc_ids: Sequence[str], *, generation: int = 0
    ) -> dict[str, Any]: ...

    async def write_batch(
        self, cabinet_id: int, writes: Sequence[DocumentWrite], *, generation: int = 0
    ) -> None: ...

    async def indexed_documents(
        self, cabinet_id: int, *, generation: int = 0
    ) -> dict[str, tuple[list[str], list[int]]]:
        """Per kind: the indexed doc_ids of the generation and their chunk counts."""
        ...

    async def delete_documents(
        self, cabinet_id: int, keys: Sequence[tuple[str, str]], *, generation: int = 0
    ) -> int: ...

    async def save_cabinet_state(
        self,
        cabinet_id: int,
        *,
        embedder_id: str,
        fingerprint: str | None,
        success: bool,
        generation: int = 0,
        counts: tuple[int, int] | None = None,
    ) -> CabinetState: ...

    async def mark_unchanged(self, cabinet_id: int) -> None: ...

    def embedding_cache(self) -> VectorCache: ...

    # -- delta reads -----------------------------------------------------------------------
    async def watermarks(self, cabinet_id: int, *, generation: int) -> dict[str, Watermark]:
        """Per kind, how far the last successful run of the generation read."""
        ...

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
        """After a successful run: `kinds` were read up to `since` (the source's clock)."""
        ...

    # -- search ----------------------------------------------------------------------------
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
    ) -> list[SearchHit]: ...

    async def refresh_ann_index(
        self, cabinet_id: int, *, building: bool = False, wait: bool = True
    ) -> list[int] | None:
        """Build the active generation's missing search indexes, drop the cabinet's stale
        ones (minutes for a big cabinet: the worker runs it as a job of its own); with
        `building`, a rebuild's generation's too (before its swap). One at a time in the
        service: None if another holds the turn and not `wait`. Returns the generations
        built for."""
        ...

    async def missing_search_indexes(self, cabinet_ids: Sequence[int]) -> set[int]:
        """The cabinets of `cabinet_ids` big enough for search indexes of their own whose
        active generation lacks them (one query: the fan-out asks it of unchanged ones)."""
        ...

    async def search_index_state(self, cabinet_id: int) -> SearchIndexState:
        """The active generation's ANN index, and whether `refresh_ann_index` has work."""
        ...

    # -- cabinets as a whole (fan-out, API, metrics) ---------------------------------------
    async def cabinet_record(self, cabinet_id: int) -> CabinetRecord | None: ...

    async def cabinet_records(self, cabinet_ids: Sequence[int]) -> dict[int, CabinetRecord]: ...

    async def skip_states(self, cabinet_ids: Sequence[int]) -> dict[int, SkipState]: ...

    async def indexed_cabinet_ids(self) -> list[int]: ...

    async def drop_cabinet(self, cabinet_id: int) -> RowCounts:
        """Delete every row of the cabinet (all generations); returns what went."""
        ...

    async def index_totals(self) -> IndexTotals: ...

    # -- inspection (tests, diagnostics) ---------------------------------------------------
    async def row_counts(self, cabinet_id: int) -> RowCounts:
        """Documents and chunks of the cabinet over all generations."""
        ...

    async def chunks(self, cabinet_id: int) -> list[StoredChunk]:
        """Every chunk row of the cabinet, by generation, doc_id, chunk_no."""
        ...
