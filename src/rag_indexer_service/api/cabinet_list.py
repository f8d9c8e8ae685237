"""`list_cabinets()`: every cabinet the source lists, joined with its index state and runs.

The source may live in another database than the index, so the join happens here: the ids
come from the source, the index rows from the store, the runs from the ledger (one query
each). Filters and the staleness order apply to the whole listing before it is cut into pages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rag_indexer_service.indexing.sources import CabinetSource
from rag_indexer_service.indexing.store.protocol import CabinetRecord, IndexStore
from rag_indexer_service.runs import Ledger, Run

__all__ = ["CabinetFilter", "CabinetListing", "CabinetSort", "ListedCabinet", "list_cabinets"]

CabinetFilter = Literal["failed", "stale", "never"]
CabinetSort = Literal["id", "staleness"]


@dataclass(frozen=True, slots=True)
class ListedCabinet:
    cabinet_id: int
    index: CabinetRecord | None
    last_run: Run | None
    active_run: Run | None

    @property
    def failing(self) -> bool:
        return self.last_run is not None and self.last_run.status == "failed"

    @property
    def never_indexed(self) -> bool:
        return self.index is None or self.index.last_success_at is None

    def is_stale(self, stale_after_s: float) -> bool:
        return not self.never_indexed and _staleness(self.index) > stale_after_s


@dataclass(frozen=True, slots=True)
class CabinetListing:
    cabinets: list[ListedCabinet]
    total: int
    """Cabinets matching the filters, over every page."""
    next_offset: int | None


def _staleness(index: CabinetRecord | None) -> float:
    """Seconds since the last success; never indexed is infinitely stale."""
    if index is None or index.staleness_s is None:
        return math.inf
    return index.staleness_s


def _staleness_key(row: tuple[int, CabinetRecord | None]) -> tuple[float, int]:
    return (-_staleness(row[1]), row[0])


async def list_cabinets(
    *,
    source: CabinetSource,
    store: IndexStore,
    ledger: Ledger,
    status: CabinetFilter | None = None,
    id_prefix: str | None = None,
    sort: CabinetSort = "id",
    stale_after_s: float = 86400.0,
    limit: int = 50,
    offset: int = 0,
) -> CabinetListing:
    """One page of the listing, most stale first with `sort="staleness"` (never indexed first)."""
    ids = sorted({cabinet_id async for cabinet_id in source.iter_cabinet_ids()})
    if id_prefix:
        ids = [cabinet_id for cabinet_id in ids if str(cabinet_id).startswith(id_prefix)]
    rows = await store.cabinet_records(ids)
    listed: Sequence[tuple[int, CabinetRecord | None]] = [(c, rows.get(c)) for c in ids]
    if status == "never":
        listed = [(c, r) for c, r in listed if r is None or r.last_success_at is None]
    elif status == "stale":
        listed = [(c, r) for c, r in listed if math.inf > _staleness(r) > stale_after_s]
    elif status == "failed":
        last = await ledger.get_many([r.last_run_id for _, r in listed if r and r.last_run_id])
        failed = {run.cabinet_id for run in last.values() if run.status == "failed"}
        listed = [(c, r) for c, r in listed if c in failed]
    if sort == "staleness":
        listed = sorted(listed, key=_staleness_key)
    page = listed[offset : offset + limit]
    last_runs = await ledger.get_many([r.last_run_id for _, r in page if r and r.last_run_id])
    active = {
        run.cabinet_id: run for run in await ledger.active_runs(cabinet_ids=[c for c, _ in page])
    }
    cabinets = [
        ListedCabinet(
            cabinet_id=c,
            index=r,
            last_run=None if r is None or r.last_run_id is None else last_runs.get(r.last_run_id),
            active_run=active.get(c),
        )
        for c, r in page
    ]
    more = offset + limit < len(listed)
    return CabinetListing(
        cabinets=cabinets, total=len(listed), next_offset=offset + limit if more else None
    )
