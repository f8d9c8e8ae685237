"""`GET /rag/scheduler`: last and next tick and the last reaper pass, as the schedulers recorded
them (read through `scheduling.ticks`, the owner of their tables)."""

from __future__ import annotations

from typing import Any

from rag_indexer_service.api.deps import RuntimeDep
from rag_indexer_service.api.routes.base import protected_router
from rag_indexer_service.api.schemas import SchedulerInstance, SchedulerOut, TickOut
from rag_indexer_service.scheduling.ticks import scheduler_records

__all__ = ["router"]

router = protected_router("scheduler")


def _as_object(value: Any) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    return {"value": value}


@router.get("/rag/scheduler", summary="Scheduler ticks and reaper passes")
async def get_scheduler(runtime: RuntimeDep) -> SchedulerOut:
    records = await scheduler_records(
        runtime.db.engine, silent_after_s=3 * runtime.settings.reaper_interval_s
    )
    schedulers = [
        SchedulerInstance(**{**row, "last_reaper": _as_object(row["last_reaper"])})
        for row in records.schedulers
    ]
    reapers = [s.last_reaper_at for s in schedulers if s.last_reaper_at is not None]
    return SchedulerOut(
        last_tick=None if records.last_tick is None else TickOut(**records.last_tick),
        next_tick_at=schedulers[0].next_tick_at if schedulers else None,
        last_reaper_at=max(reapers, default=None),
        schedulers=schedulers,
    )
