"""What the front ends (CLI, HTTP API, console) do the same way: keyword-only service functions over
the runtime's components. Each front end only adds its own wording and output shape."""

from __future__ import annotations

from rag_indexer_service.errors import CabinetNotFound, CabinetNotIndexed
from rag_indexer_service.indexing.indexer import RAGIndexer
from rag_indexer_service.indexing.sources import CabinetSource
from rag_indexer_service.indexing.store import IndexStore, SearchHit
from rag_indexer_service.jobs.dispatch import Dispatcher, TriggerResult
from rag_indexer_service.runs import Trigger

__all__ = ["ensure_listed", "search_indexed_cabinet", "trigger_listed_cabinet"]


async def ensure_listed(*, source: CabinetSource, cabinet_id: int) -> None:
    """`CabinetNotFound` unless the source lists the cabinet."""
    if not await source.cabinet_exists(cabinet_id):
        raise CabinetNotFound(cabinet_id)


async def trigger_listed_cabinet(
    *,
    source: CabinetSource,
    dispatcher: Dispatcher,
    cabinet_id: int,
    trigger: Trigger,
    force: bool = False,
) -> TriggerResult:
    """Ask for a run of a cabinet the source lists; `CabinetNotFound` otherwise."""
    await ensure_listed(source=source, cabinet_id=cabinet_id)
    return await dispatcher.trigger(cabinet_id, trigger, force=force)


async def search_indexed_cabinet(
    *,
    source: CabinetSource,
    store: IndexStore,
    indexer: RAGIndexer,
    cabinet_id: int,
    query: str,
    k: int,
    min_similarity: float | None = None,
) -> list[SearchHit]:
    """Hybrid search in a cabinet's index. One without an index is `CabinetNotFound` when the
    source does not list it (asking to index it cannot help), else `CabinetNotIndexed`. An
    index the source no longer lists is still searched until the purge removes it. The
    state is read only when nothing came back (a search of a cabinet without an index finds
    nothing)."""
    hits = await indexer.search(cabinet_id, query, k=k, min_similarity=min_similarity)
    if not hits and await store.cabinet_state(cabinet_id) is None:
        await ensure_listed(source=source, cabinet_id=cabinet_id)
        raise CabinetNotIndexed(cabinet_id)
    return hits
