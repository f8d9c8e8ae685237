"""The index store: the only code with SQL on `rag_cabinets`, `rag_documents`, `rag_chunks`,
`rag_embedding_cache` and `rag_watermarks`. Everything else goes through `IndexStore`, built
by `build_store`.

    protocol.py         IndexStore, VectorCache and the data types crossing them
    pgvector.py         PgVectorStore: document ledger, chunk writes, deletes, search entry
    generations.py      generations of a cabinet's index (embedder change = atomic swap)
    search.py           hybrid search (vector + full-text sides at once, RRF fusion)
    search_sql.py       the statements a search runs
    cabinets.py         whole-cabinet rows: records, skip states, purge, totals, inspection
    rows.py             the one "delete a cabinet's rows" helper, asyncpg handle for COPY
    embedding_cache.py  EmbeddingCache: vectors by (embedder, text hash)
    watermarks.py       delta-read watermarks per (cabinet, generation, kind)

May import: `db` (engine helpers, locks), `errors`, `indexing.embedders` (vector types).
Not `runs`, `scheduling`, `api` or `cli`: they import the store.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from rag_indexer_service.indexing.store.pgvector import PgVectorStore
from rag_indexer_service.indexing.store.protocol import (
    CabinetRecord,
    CabinetState,
    ChunkRow,
    DocumentWrite,
    GenerationPlan,
    IndexStore,
    IndexTotals,
    SearchHit,
    SkipState,
    StoredChunk,
    VectorCache,
    Watermark,
)
from rag_indexer_service.indexing.store.rows import RowCounts
from rag_indexer_service.indexing.store.search import SearchOptions

__all__ = [
    "CabinetRecord",
    "CabinetState",
    "ChunkRow",
    "DocumentWrite",
    "GenerationPlan",
    "IndexStore",
    "IndexTotals",
    "PgVectorStore",
    "RowCounts",
    "SearchHit",
    "SkipState",
    "StoredChunk",
    "VectorCache",
    "Watermark",
    "build_store",
]


def build_store(
    engine: AsyncEngine,
    *,
    search: SearchOptions | None = None,
    search_engine: AsyncEngine | None = None,
) -> IndexStore:
    """The index store on the service database (the one implementation today); searches run
    on `search_engine`, a pool of the same database (`engine` if not given)."""
    return PgVectorStore(engine, search=search, search_engine=search_engine)
