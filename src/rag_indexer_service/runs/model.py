"""What a run is: `Run` (one row of `rag_runs`), its statuses, triggers and counters."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from rag_indexer_service.db.mapping import from_mapping
from rag_indexer_service.indexing.report import COUNTER_FIELDS, RunMode

__all__ = ["ACTIVE_STATUSES", "COUNTER_FIELDS", "RUN_STATUSES", "Run", "RunStatus", "Trigger"]

Trigger = Literal["schedule", "manual", "cli"]
RunStatus = Literal["queued", "running", "retrying", "succeeded", "failed", "skipped"]
RUN_STATUSES: tuple[RunStatus, ...] = (
    "queued",
    "running",
    "retrying",
    "succeeded",
    "failed",
    "skipped",
)
ACTIVE_STATUSES: tuple[RunStatus, ...] = ("queued", "running", "retrying")


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    cabinet_id: int
    trigger: Trigger
    status: RunStatus
    queue: str
    attempt: int
    rerun_requested: bool
    forced: bool
    """The run scans even if the source's fingerprint is unchanged."""
    rerun_forced: bool
    """A force request came while the run was running: its follow-up is forced."""
    follow_up_of: int | None
    message_key: str | None
    worker_id: str | None
    counters: dict[str, int | bool | None]
    mode: RunMode | None
    """How the run read the source: `delta`, `full` or `skipped` (set when it succeeded)."""
    full_reason: str | None
    duration_s: float | None
    failures: list[dict[str, str]] | None
    progress_done: int
    progress_total: int | None
    error: str | None
    queued_at: dt.datetime
    sent_at: dt.datetime | None
    started_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @classmethod
    def from_row(cls, row: Any) -> Run:
        m = row._mapping
        return from_mapping(cls, m, counters={name: m[name] for name in COUNTER_FIELDS})

    def to_dict(self) -> dict[str, Any]:
        def iso(value: dt.datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "run_id": self.id,
            "cabinet_id": self.cabinet_id,
            "trigger": self.trigger,
            "status": self.status,
            "attempt": self.attempt,
            "rerun_requested": self.rerun_requested,
            "forced": self.forced,
            **self.counters,
            "mode": self.mode,
            "full_reason": self.full_reason,
            "duration_s": self.duration_s,
            "progress_done": self.progress_done,
            "progress_total": self.progress_total,
            "error": self.error,
            "queued_at": iso(self.queued_at),
            "started_at": iso(self.started_at),
            "heartbeat_at": iso(self.heartbeat_at),
            "finished_at": iso(self.finished_at),
        }
