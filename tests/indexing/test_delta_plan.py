"""`choose_read`: when a run reads only what changed and when in full (no database)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rag_indexer_service.indexing.delta import choose_read
from rag_indexer_service.indexing.store import Watermark

T = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def mark(kind: str, *, digest: str = "d", age_s: float = 10.0, runs: int = 0) -> Watermark:
    return Watermark(kind, T, digest, age_s, runs)


def plan(**overrides: Any) -> tuple[str, str | None]:
    values: dict[str, Any] = {
        "delta_kinds": ("a", "b"),
        "watermarks": {"a": mark("a"), "b": mark("b")},
        "config_digest": "d",
        "force": False,
        "rebuild": False,
        "every_runs": 5,
        "max_age_s": 100.0,
        "overlap_s": 60.0,
    }
    values.update(overrides)
    read = choose_read(**values)
    return read.mode, read.full_reason


def test_a_delta_read_starts_the_overlap_before_each_watermark() -> None:
    read = choose_read(
        delta_kinds=("a",),
        watermarks={"a": mark("a")},
        config_digest="d",
        force=False,
        rebuild=False,
        every_runs=5,
        max_age_s=100.0,
        overlap_s=60.0,
    )
    assert (read.mode, read.since) == ("delta", {"a": T - dt.timedelta(seconds=60)})
    assert not read.overrides_skip


def test_full_reads_and_their_reasons() -> None:
    assert plan() == ("delta", None)
    assert plan(delta_kinds=()) == ("full", "no delta queries")
    assert plan(force=True) == ("full", "forced")
    assert plan(rebuild=True) == ("full", "rebuild for a new embedder")
    assert plan(watermarks={"a": mark("a")}) == ("full", "no watermark yet")
    assert plan(config_digest="e")[1] == "sources file, chunk settings or embedder changed"
    assert plan(watermarks={"a": mark("a", runs=4), "b": mark("b")}) == ("full", "every 5 runs")
    assert plan(watermarks={"a": mark("a", runs=3), "b": mark("b")})[0] == "delta"
    aged = {"a": mark("a", age_s=100.0), "b": mark("b")}
    assert plan(watermarks=aged) == ("full", "last full read older than 100 s")
    assert choose_read(
        delta_kinds=("a", "b"),
        watermarks=aged,
        config_digest="d",
        force=False,
        rebuild=False,
        every_runs=5,
        max_age_s=100.0,
        overlap_s=60.0,
    ).overrides_skip
