"""`IndexReport`: what one indexing run of one cabinet did, as data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["DocFailure", "IndexReport", "RunMode"]

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
