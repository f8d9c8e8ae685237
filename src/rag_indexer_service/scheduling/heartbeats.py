"""Scheduler heartbeats: the only code with SQL on `rag_scheduler_heartbeats`, one row per
scheduler process: what it did last and what it will do next."""

from __future__ import annotations

import builtins
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rag_indexer_service.db.mapping import from_mapping

__all__ = ["Heartbeats", "SchedulerHeartbeat", "SchedulerState"]

SchedulerState = Literal["running", "silent", "stopped"]
_PRUNE_HEARTBEATS_AFTER_S = 7 * 86400


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class SchedulerHeartbeat:
    scheduler_id: str
    schedule: str | None
    state: SchedulerState
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    stopped_at: dt.datetime | None
    last_tick_at: dt.datetime | None
    next_tick_at: dt.datetime | None
    last_reaper_at: dt.datetime | None
    last_reaper: dict[str, Any] | None

    @property
    def alive(self) -> bool:
        """Beating recently and not stopped."""
        return self.state == "running"

    @property
    def gone_since(self) -> dt.datetime | None:
        """When a scheduler that is not alive stopped, or last gave a sign of life."""
        return None if self.alive else (self.stopped_at or self.heartbeat_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheduler_id": self.scheduler_id,
            "schedule": self.schedule,
            "state": self.state,
            "alive": self.alive,
            "gone_since": _iso(self.gone_since),
            "started_at": _iso(self.started_at),
            "heartbeat_at": _iso(self.heartbeat_at),
            "stopped_at": _iso(self.stopped_at),
            "last_tick_at": _iso(self.last_tick_at),
            "next_tick_at": _iso(self.next_tick_at),
            "last_reaper_at": _iso(self.last_reaper_at),
            "last_reaper": self.last_reaper,
        }


class Heartbeats:
    """One row per scheduler process: what it did last and what it will do next."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def started(
        self, scheduler_id: str, *, schedule: str, next_tick_at: dt.datetime | None
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                text(
                    "DELETE FROM rag_scheduler_heartbeats "
                    "WHERE heartbeat_at < now() - make_interval(secs => :prune)"
                ),
                {"prune": _PRUNE_HEARTBEATS_AFTER_S},
            )
            await conn.execute(
                text(
                    "INSERT INTO rag_scheduler_heartbeats (scheduler_id, schedule, next_tick_at) "
                    "VALUES (:id, :schedule, :next) ON CONFLICT (scheduler_id) DO UPDATE SET "
                    "schedule = EXCLUDED.schedule, next_tick_at = EXCLUDED.next_tick_at, "
                    "started_at = now(), heartbeat_at = now(), stopped_at = NULL"
                ),
                {"id": scheduler_id, "schedule": schedule, "next": next_tick_at},
            )

    async def beat(
        self,
        scheduler_id: str,
        *,
        next_tick_at: dt.datetime | None,
        last_tick_at: dt.datetime | None = None,
        reaper: dict[str, Any] | None = None,
    ) -> None:
        """Refresh the heartbeat; record a tick or a reaper pass if given."""
        async with self._engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE rag_scheduler_heartbeats SET heartbeat_at = now(), "
                    "next_tick_at = :next, last_tick_at = COALESCE(:tick, last_tick_at), "
                    "last_reaper_at = CASE WHEN :reaped THEN now() ELSE last_reaper_at END, "
                    "last_reaper = COALESCE(CAST(:reaper AS jsonb), last_reaper) "
                    "WHERE scheduler_id = :id"
                ),
                {
                    "id": scheduler_id,
                    "next": next_tick_at,
                    "tick": last_tick_at,
                    "reaped": reaper is not None,
                    "reaper": None if reaper is None else json.dumps(reaper),
                },
            )

    async def stopped(self, scheduler_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE rag_scheduler_heartbeats SET stopped_at = now(), next_tick_at = NULL "
                    "WHERE scheduler_id = :id"
                ),
                {"id": scheduler_id},
            )

    async def list(self, *, silent_after_s: float) -> list[SchedulerHeartbeat]:
        """Every known scheduler, newest first; `silent` if it has not beaten for a while."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT *, CASE WHEN stopped_at IS NOT NULL THEN 'stopped' "
                    "WHEN heartbeat_at < now() - make_interval(secs => :silent) THEN 'silent' "
                    "ELSE 'running' END AS state "
                    "FROM rag_scheduler_heartbeats ORDER BY heartbeat_at DESC"
                ),
                {"silent": silent_after_s},
            )
            return [from_mapping(SchedulerHeartbeat, r._mapping) for r in rows]

    async def records(
        self, *, limit: int = 20, silent_after_s: float = 180.0
    ) -> builtins.list[dict[str, Any]]:
        """The newest heartbeat rows as plain columns, with their age by the database clock;
        `alive` as in `list()` (not stopped, beaten within `silent_after_s`), and for the
        others `gone_since`."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT scheduler_id, started_at, heartbeat_at, stopped_at, "
                    "EXTRACT(EPOCH FROM now() - heartbeat_at)::float8 AS heartbeat_age_s, "
                    "last_tick_at, next_tick_at, last_reaper_at, last_reaper, alive, "
                    "CASE WHEN alive THEN NULL ELSE COALESCE(stopped_at, heartbeat_at) END "
                    "AS gone_since FROM ("
                    "SELECT *, stopped_at IS NULL AND "
                    "heartbeat_at >= now() - make_interval(secs => :silent) AS alive "
                    "FROM rag_scheduler_heartbeats) AS beats "
                    "ORDER BY heartbeat_at DESC LIMIT :n"
                ),
                {"n": limit, "silent": silent_after_s},
            )
            return [dict(r._mapping) for r in rows]
