"""`open_runtime()`: build the database, source, store, embedder and indexer from settings.

Every process (CLI, worker, scheduler, API) starts through here, on the event loop it will use.
Each component comes from its factory (`build_source`, `build_store`, `build_embedder`) and is
typed by its protocol, so another implementation changes one module and one factory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from rag_indexer_service.config import Settings
from rag_indexer_service.db import Database, open_database
from rag_indexer_service.indexing.embedders import build_embedder, close_embedder
from rag_indexer_service.indexing.indexer import IndexOptions, RAGIndexer
from rag_indexer_service.indexing.sources import CabinetSource, build_source
from rag_indexer_service.indexing.store import IndexStore, build_store
from rag_indexer_service.indexing.store.search import SearchOptions
from rag_indexer_service.indexing.synonyms import load_synonyms

__all__ = ["Runtime", "open_runtime"]


@dataclass(slots=True)
class Runtime:
    settings: Settings
    db: Database
    source: CabinetSource
    store: IndexStore
    indexer: RAGIndexer


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    pool_size: int = 5,
    prepare_source: Callable[[str], Awaitable[None]] | None = None,
) -> AsyncIterator[Runtime]:
    """`prepare_source(source_url)` runs before the source's queries are checked (the demo
    seeds its tables there)."""
    embedder = build_embedder(settings)
    synonyms = load_synonyms(settings.search_synonyms_file) if settings.search_synonyms else None
    db = await open_database(settings, pool_size=pool_size)
    try:
        if prepare_source is not None:
            await prepare_source(db.source_url)
        source = build_source(settings, db.source_engine)
        # A run holds one connection for the cabinet's lock and works on another.
        await asyncio.gather(source.check(), db.warm(min(pool_size, 2)))
        store = build_store(
            db.engine,
            search_engine=db.search_engine,
            search=SearchOptions(
                ann_min_chunks=settings.search_ann_min_chunks,
                probes_factor=settings.search_probes_factor,
                keyword_candidates=settings.search_keyword_candidates,
                searches_at_once=pool_size,
            ),
        )
        indexer = RAGIndexer(
            source=source,
            store=store,
            embedder=embedder,
            options=IndexOptions.from_settings(settings),
            synonyms=synonyms,
        )
        yield Runtime(settings=settings, db=db, source=source, store=store, indexer=indexer)
    finally:
        await close_embedder(embedder)
        await db.close()
