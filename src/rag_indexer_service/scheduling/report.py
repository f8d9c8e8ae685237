"""`FanOutReport`: what one fan-out over all cabinets did, as data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["FanOutReport"]

_MAX_PROBLEMS = 20


@dataclass(slots=True)
class FanOutReport:
    """Counters of one fan-out; `problems` keeps the first few per-cabinet errors."""

    seen: int = 0
    enqueued: int = 0
    skipped: int = 0
    already_active: int = 0
    purged: int = 0
    errors: int = 0
    problems: list[str] = field(default_factory=list)
    purge_refused: str | None = None
    interrupted: bool = False
    error: str | None = None
    duration_s: float = 0.0

    def problem(self, cabinet_id: int, message: str) -> None:
        """Count a problem of one cabinet (the loop goes on)."""
        self.errors += 1
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(f"cabinet {cabinet_id}: {message}")

    def summary(self) -> str | None:
        """The line stored as the tick's `error`: what went wrong, or None."""
        parts = [
            text
            for text in (
                self.error,
                self.purge_refused,
                f"{self.errors} cabinet problem(s), first: {self.problems[0]}"
                if self.problems
                else None,
            )
            if text
        ]
        return "; ".join(parts)[:4000] if parts else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "enqueued": self.enqueued,
            "skipped": self.skipped,
            "already_active": self.already_active,
            "purged": self.purged,
            "errors": self.errors,
            "problems": list(self.problems),
            "purge_refused": self.purge_refused,
            "interrupted": self.interrupted,
            "error": self.error,
            "duration_s": self.duration_s,
        }
