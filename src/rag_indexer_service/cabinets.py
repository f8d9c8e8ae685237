"""What the CLI and the HTTP API ask of one cabinet, decided in one place for both.

* `ensure_listed`: a run may only be requested for a cabinet the source lists;
* `search_cabinet`: a cabinet with an index is searched (even if the source dropped it since:
  its index stays until the purge); one without is `CabinetNotFound` when the source does not
  list it, else `CabinetNotIndexed`.

Each front end turns these errors into its own answer (a 404 with a code, a one-line error).
"""

from __future__ import annotations

from rag_indexer_service.errors import CabinetNotFound, CabinetNotIndexed
from rag_indexer_service.indexing.search import SearchHit
from rag_indexer_service.indexing.sources import CabinetSource
from rag_indexer_service.runtime import Runtime

__all__ = ["ensure_listed", "search_cabinet"]


async def ensure_listed(source: CabinetSource, cabinet_id: int) -> None:
    if not await source.cabinet_exists(cabinet_id):
        raise CabinetNotFound(cabinet_id)


async def search_cabinet(rt: Runtime, cabinet_id: int, query: str, *, k: int) -> list[SearchHit]:
    if await rt.store.cabinet_state(cabinet_id) is None:
        await ensure_listed(rt.source, cabinet_id)
        raise CabinetNotIndexed(cabinet_id)
    return await rt.indexer.search(cabinet_id, query, k=k)
