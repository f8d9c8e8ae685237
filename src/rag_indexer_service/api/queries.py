"""Read-only SQL the API needs beyond the ledger: cabinet index state and scheduler records."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["CabinetRecord", "SchedulerRecords", "cabinet_record", "scheduler_records"]


@dataclass(frozen=True, slots=True)
class CabinetRecord:
    cabinet_id: int
    embedder_id: str | None
    source_fingerprint: str | None
    document_count: int
    chunk_count: int
    last_indexed_at: dt.datetime | None
    last_success_at: dt.datetime | None
    staleness_s: float | None
    last_run_id: int | None


async def cabinet_record(engine: AsyncEngine, cabinet_id: int) -> CabinetRecord | None:
    """The cabinet's `rag_cabinets` row, with its staleness measured by the database clock."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT cabinet_id, embedder_id, source_fingerprint, document_count, "
                    "chunk_count, last_indexed_at, last_success_at, "
                    "EXTRACT(EPOCH FROM now() - last_success_at)::float8 AS staleness_s, "
                    "last_run_id FROM rag_cabinets WHERE cabinet_id = :c"
                ),
                {"c": cabinet_id},
            )
        ).first()
    return None if row is None else CabinetRecord(*row)


@dataclass(frozen=True, slots=True)
class SchedulerRecords:
    last_tick: dict[str, Any] | None
    schedulers: list[dict[str, Any]]


async def scheduler_records(engine: AsyncEngine, *, max_schedulers: int = 20) -> SchedulerRecords:
    """The newest claimed tick and the schedulers' heartbeat rows, newest first."""
    async with engine.connect() as conn:
        tick = (
            await conn.execute(
                text(
                    "SELECT tick_at, claimed_by, claimed_at, finished_at, cabinets_seen, "
                    "cabinets_enqueued, cabinets_skipped, cabinets_active, cabinets_purged, error "
                    "FROM rag_schedule_ticks ORDER BY tick_at DESC LIMIT 1"
                )
            )
        ).first()
        rows = await conn.execute(
            text(
                "SELECT scheduler_id, started_at, heartbeat_at, "
                "EXTRACT(EPOCH FROM now() - heartbeat_at)::float8 AS heartbeat_age_s, "
                "last_tick_at, next_tick_at, last_reaper_at, last_reaper "
                "FROM rag_scheduler_heartbeats ORDER BY heartbeat_at DESC LIMIT :n"
            ),
            {"n": max_schedulers},
        )
        schedulers = [dict(r._mapping) for r in rows]
    return SchedulerRecords(
        last_tick=None if tick is None else dict(tick._mapping), schedulers=schedulers
    )
