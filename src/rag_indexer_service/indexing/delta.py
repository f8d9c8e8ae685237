"""Choosing how a run reads: only what changed since the watermarks (`delta`), or everything
(`full`), and why.

A run reads in full when it cannot trust its watermarks (none yet, or written with other
queries, chunk settings or embedder, or a rebuild into a new generation), when asked to
(`force`), and periodically as the safety net that catches rows edited without a new
`updated_at`: after `full_scan_every_runs` delta runs or `full_scan_max_age_s`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from rag_indexer_service.indexing.report import RunMode
from rag_indexer_service.indexing.store import Watermark

__all__ = ["ReadPlan", "RunMode", "choose_read"]


@dataclass(frozen=True, slots=True)
class ReadPlan:
    mode: Literal["delta", "full"]
    full_reason: str | None
    since: dict[str, dt.datetime]
    """For a delta run: per delta kind, read rows changed after this (overlap subtracted)."""
    overrides_skip: bool = False
    """The reconciliation is due by age: read even if the fingerprint is unchanged (it is
    made from the same `updated_at` columns that may have missed an edit)."""


def choose_read(
    *,
    delta_kinds: Collection[str],
    watermarks: Mapping[str, Watermark],
    config_digest: str,
    force: bool,
    rebuild: bool,
    every_runs: int,
    max_age_s: float,
    overlap_s: float,
) -> ReadPlan:
    def full(reason: str, *, overrides_skip: bool = False) -> ReadPlan:
        return ReadPlan("full", reason, {}, overrides_skip)

    if not delta_kinds:
        return full("no delta queries")
    if force:
        return full("forced")
    if rebuild:
        return full("rebuild for a new embedder")
    marks = [watermarks.get(kind) for kind in delta_kinds]
    present = [m for m in marks if m is not None]
    if len(present) < len(marks):
        return full("no watermark yet")
    if any(m.config_digest != config_digest for m in present):
        return full("sources file, chunk settings or embedder changed")
    if max(m.delta_runs for m in present) + 1 >= every_runs:
        return full(f"every {every_runs} runs")
    if max(m.full_age_s for m in present) >= max_age_s:
        return full(f"last full read older than {max_age_s:g} s", overrides_skip=True)
    overlap = dt.timedelta(seconds=overlap_s)
    return ReadPlan("delta", None, {m.kind: m.since - overlap for m in present})
