"""`IndexReport`: what one indexing run of one cabinet did, as data.

Its counter fields (`COUNTER_FIELDS`: every field but the cabinet, the duration, the read
mode and the failures) are the one definition of a run's counters: the ledger's columns,
`Run.counters`, the API's `RunCounters` and the CLI's tables are all made from them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

__all__ = ["COUNTER_FIELDS", "COUNTER_TYPES", "DocFailure", "IndexReport", "RunMode"]

RunMode = Literal["delta", "full", "skipped"]


@dataclass(frozen=True, slots=True)
class DocFailure:
    kind: str
    doc_id: str
    reason: str


@dataclass(slots=True)
class IndexReport:
    cabinet_id: int
    docs_seen: int = 0
    docs_added: int = 0
    docs_updated: int = 0
    docs_metadata_only: int = 0
    docs_unchanged: int = 0
    docs_deleted: int = 0
    docs_failed: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_deleted: int = 0
    embedding_requests: int = 0
    embedding_tokens: int = 0
    embedding_retries: int = 0
    embedding_throttled_ms: int = 0
    embedding_cache_hits: int = 0
    embedding_truncated: int = 0
    scan_skipped: bool = False
    """The source's fingerprint had not changed since the last success: nothing was read."""
    mode: RunMode = "full"
    """`delta` (only changed rows read), `full` or `skipped` (fingerprint unchanged)."""
    full_reason: str | None = None
    """Why a run read in full."""
    rebuild: bool = False
    """The run rebuilt the index for a new embedder (and swapped it in)."""
    duration_s: float = 0.0
    failures: list[DocFailure] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def log_fields(self) -> dict[str, Any]:
        """The report for a structured log line: every counter, no failure list."""
        fields = self.to_dict()
        fields["failures"] = len(self.failures)
        return fields

    def summary(self) -> str:
        """`281 seen, 281 added, 281 chunks embedded in 1.38 s`: what happened, zeros left out."""
        if self.scan_skipped:
            return (
                f"unchanged since the last run (same source fingerprint): "
                f"{self.docs_unchanged} documents, nothing read, {self.duration_s:.2f} s"
            )
        parts = [f"{self.docs_seen} seen"]
        for name, label in _SUMMARY_LABELS:
            value = getattr(self, name)
            if value:
                parts.append(f"{value} {label}")
        if self.rebuild:
            parts.append("index rebuilt for a new embedder")
        if self.mode == "delta":
            parts.append("delta read")
        elif self.full_reason not in (None, "no delta queries"):
            parts.append(f"full read ({self.full_reason})")
        return ", ".join(parts) + f" in {self.duration_s:.2f} s"


_SUMMARY_LABELS = (
    ("docs_added", "added"),
    ("docs_updated", "updated"),
    ("docs_metadata_only", "metadata-only"),
    ("docs_unchanged", "unchanged"),
    ("docs_deleted", "deleted"),
    ("docs_failed", "failed"),
    ("chunks_embedded", "chunks embedded"),
    ("chunks_reused", "chunks reused"),
    ("chunks_deleted", "chunks deleted"),
    ("embedding_requests", "embedding requests"),
    ("embedding_tokens", "tokens"),
    ("embedding_retries", "embedding retries"),
    ("embedding_throttled_ms", "ms throttled"),
    ("embedding_cache_hits", "cache hits"),
    ("embedding_truncated", "inputs truncated"),
)

_NOT_COUNTERS = ("cabinet_id", "duration_s", "failures", "mode", "full_reason")
_TYPES: dict[object, type[int] | type[bool]] = {"int": int, "bool": bool, int: int, bool: bool}
COUNTER_TYPES: dict[str, type[int] | type[bool]] = {
    f.name: _TYPES[f.type] for f in fields(IndexReport) if f.name not in _NOT_COUNTERS
}
"""Counter name → its type (`int` or `bool`), in `IndexReport`'s field order."""
COUNTER_FIELDS: tuple[str, ...] = tuple(COUNTER_TYPES)
