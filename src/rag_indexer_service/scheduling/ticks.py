"""The scheduler's ledger: the only code with SQL on `rag_schedule_ticks` (tick claims), and
what operators read (`scheduler_status`, `scheduler_records`). Heartbeats are
`heartbeats.py`'s, run counts the run ledger's (`runs`).

A tick is claimed with `INSERT … ON CONFLICT DO NOTHING` on its time: of any number of
schedulers firing for the same tick, exactly one fans out. The owner refreshes
`heartbeat_at` after every batch; a claim left without heartbeat (owner died, or released it
on shutdown or a transient failure) may be taken over, which resumes the fan-out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rag_indexer_service.db.mapping import from_mapping
from rag_indexer_service.runs import Ledger
from rag_indexer_service.scheduling.heartbeats import Heartbeats, SchedulerHeartbeat
from rag_indexer_service.scheduling.report import FanOutReport

__all__ = [
    "SchedulerRecords",
    "SchedulerStatus",
    "Tick",
    "TickClaims",
    "scheduler_records",
    "scheduler_status",
]


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


_TICK_COLUMNS = {
    "seen": "cabinets_seen",
    "enqueued": "cabinets_enqueued",
    "skipped": "cabinets_skipped",
    "already_active": "cabinets_active",
    "purged": "cabinets_purged",
    "errors": "cabinet_errors",
}


@dataclass(frozen=True, slots=True)
class Tick:
    tick_at: dt.datetime
    claimed_by: str
    claimed_at: dt.datetime
    heartbeat_at: dt.datetime | None
    finished_at: dt.datetime | None
    seen: int
    enqueued: int
    skipped: int
    already_active: int
    purged: int
    errors: int
    error: str | None

    @classmethod
    def from_row(cls, row: Any) -> Tick:
        return from_mapping(cls, row._mapping, columns=_TICK_COLUMNS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tick_at": _iso(self.tick_at),
            "claimed_by": self.claimed_by,
            "claimed_at": _iso(self.claimed_at),
            "finished_at": _iso(self.finished_at),
            "cabinets_seen": self.seen,
            "cabinets_enqueued": self.enqueued,
            "cabinets_skipped": self.skipped,
            "cabinets_active": self.already_active,
            "cabinets_purged": self.purged,
            "cabinet_errors": self.errors,
            "error": self.error,
        }


class TickClaims:
    """Claims and progress of ticks. Every method is one short statement."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(self, tick_at: dt.datetime, owner: str, *, stale_after_s: float) -> bool:
        """Claim the tick, or take over a claim without heartbeat. False: someone else has it."""
        async with self._engine.begin() as conn:
            claimed = await conn.scalar(
                text(
                    "INSERT INTO rag_schedule_ticks (tick_at, claimed_by) VALUES (:t, :me) "
                    "ON CONFLICT (tick_at) DO NOTHING RETURNING tick_at"
                ),
                {"t": tick_at, "me": owner},
            )
            if claimed is None:
                claimed = await conn.scalar(
                    text(
                        "UPDATE rag_schedule_ticks SET claimed_by = :me, claimed_at = now(), "
                        "heartbeat_at = now() WHERE tick_at = :t AND finished_at IS NULL "
                        "AND (heartbeat_at IS NULL "
                        "     OR heartbeat_at < now() - make_interval(secs => :stale)) "
                        "RETURNING tick_at"
                    ),
                    {"t": tick_at, "me": owner, "stale": stale_after_s},
                )
        return claimed is not None

    async def _update(
        self, tick_at: dt.datetime, owner: str, report: FanOutReport, assignments: str
    ) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                text(
                    "UPDATE rag_schedule_ticks SET cabinets_seen = :seen, "
                    "cabinets_enqueued = :enqueued, cabinets_skipped = :skipped, "
                    "cabinets_active = :active, cabinets_purged = :purged, "
                    f"cabinet_errors = :errors, error = :error, {assignments} "
                    "WHERE tick_at = :t AND claimed_by = :me AND finished_at IS NULL"
                ),
                {
                    "t": tick_at,
                    "me": owner,
                    "seen": report.seen,
                    "enqueued": report.enqueued,
                    "skipped": report.skipped,
                    "active": report.already_active,
                    "purged": report.purged,
                    "errors": report.errors,
                    "error": report.summary(),
                },
            )
            return bool(result.rowcount)

    async def record(self, tick_at: dt.datetime, owner: str, report: FanOutReport) -> bool:
        """Store progress and refresh the heartbeat; False if the claim is no longer ours."""
        return await self._update(tick_at, owner, report, "heartbeat_at = now()")

    async def finish(self, tick_at: dt.datetime, owner: str, report: FanOutReport) -> bool:
        return await self._update(
            tick_at, owner, report, "heartbeat_at = now(), finished_at = now()"
        )

    async def release(self, tick_at: dt.datetime, owner: str, report: FanOutReport) -> bool:
        """Leave the tick unfinished and free for any scheduler to resume."""
        return await self._update(tick_at, owner, report, "heartbeat_at = NULL")

    async def get(self, tick_at: dt.datetime) -> Tick | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT * FROM rag_schedule_ticks WHERE tick_at = :t"), {"t": tick_at}
                )
            ).first()
        return None if row is None else Tick.from_row(row)

    async def recent(self, limit: int = 10) -> list[Tick]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT * FROM rag_schedule_ticks ORDER BY tick_at DESC LIMIT :n"),
                {"n": limit},
            )
            return [Tick.from_row(r) for r in rows]

    async def resumable(self, *, within_s: float, stale_after_s: float) -> dt.datetime | None:
        """The newest unfinished tick of the last `within_s` nobody works on, unless superseded
        by a later finished tick."""
        async with self._engine.connect() as conn:
            tick_at: dt.datetime | None = await conn.scalar(
                text(
                    "SELECT tick_at FROM rag_schedule_ticks t WHERE finished_at IS NULL "
                    "AND tick_at >= now() - make_interval(secs => :within) "
                    "AND (heartbeat_at IS NULL "
                    "     OR heartbeat_at < now() - make_interval(secs => :stale)) "
                    "AND NOT EXISTS (SELECT 1 FROM rag_schedule_ticks n "
                    "                WHERE n.tick_at > t.tick_at AND n.finished_at IS NOT NULL) "
                    "ORDER BY tick_at DESC LIMIT 1"
                ),
                {"within": within_s, "stale": stale_after_s},
            )
        return tick_at


@dataclass(frozen=True, slots=True)
class SchedulerStatus:
    """What `rag-indexer status` and `GET /rag/scheduler` show."""

    schedulers: list[SchedulerHeartbeat]
    ticks: list[Tick]
    runs_by_status: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schedulers": [s.to_dict() for s in self.schedulers],
            "ticks": [t.to_dict() for t in self.ticks],
            "runs_by_status": dict(self.runs_by_status),
        }


async def scheduler_status(
    engine: AsyncEngine, *, ticks: int = 5, silent_after_s: float = 180.0
) -> SchedulerStatus:
    """Schedulers' heartbeats, the latest ticks and the number of runs in each status.

    `silent_after_s`: a scheduler without heartbeat for this long is shown as `silent`
    (schedulers beat on every reaper pass; 3 × RAG_REAPER_INTERVAL_S is a good value).
    """
    return SchedulerStatus(
        schedulers=await Heartbeats(engine).list(silent_after_s=silent_after_s),
        ticks=await TickClaims(engine).recent(ticks),
        runs_by_status=await Ledger(engine).count_by_status(),
    )


@dataclass(frozen=True, slots=True)
class SchedulerRecords:
    """The newest claimed tick and the schedulers' heartbeat rows, as plain columns (API)."""

    last_tick: dict[str, Any] | None
    schedulers: list[dict[str, Any]]


async def scheduler_records(
    engine: AsyncEngine, *, max_schedulers: int = 20, silent_after_s: float = 180.0
) -> SchedulerRecords:
    """The newest claimed tick and the schedulers' heartbeat rows, newest first; one without a
    heartbeat for `silent_after_s` (or stopped) is not `alive`."""
    async with engine.connect() as conn:
        tick = (
            await conn.execute(
                text(
                    "SELECT tick_at, claimed_by, claimed_at, finished_at, cabinets_seen, "
                    "cabinets_enqueued, cabinets_skipped, cabinets_active, cabinets_purged, "
                    "error FROM rag_schedule_ticks ORDER BY tick_at DESC LIMIT 1"
                )
            )
        ).first()
    return SchedulerRecords(
        last_tick=None if tick is None else dict(tick._mapping),
        schedulers=await Heartbeats(engine).records(
            limit=max_schedulers, silent_after_s=silent_after_s
        ),
    )
