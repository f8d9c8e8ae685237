"""Small inline SVG charts (no script, no external asset): colours come from `console.css`
classes named after run statuses (`s-succeeded`, `s-failed`, ...)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from markupsafe import Markup, escape

from rag_indexer_service.runs import RUN_STATUSES, Run

__all__ = ["duration_bars", "run_duration_s", "status_bars"]

_W, _H, _PAD = 600, 120, 30
_MIN_SLOTS = 30


def _svg(body: str, label: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {_W} {_H + _PAD}" role="img" '
        f'aria-label="{escape(label)}">{body}</svg>'
    )


def status_bars(
    counts: Sequence[tuple[dt.datetime, str, int]], *, now: dt.datetime, hours: int = 24
) -> Markup:
    """Runs queued per hour over the last `hours` hours, stacked by status."""
    start = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=hours - 1)
    slots: list[dict[str, int]] = [{} for _ in range(hours)]
    for hour, status, n in counts:
        index = int((hour - start).total_seconds() // 3600)
        if 0 <= index < hours:
            slots[index][status] = slots[index].get(status, 0) + n
    peak = max((sum(s.values()) for s in slots), default=0) or 1
    width = _W / hours
    parts = []
    for i, slot in enumerate(slots):
        y = float(_H)
        for status in RUN_STATUSES:
            n = slot.get(status, 0)
            if not n:
                continue
            h = n / peak * (_H - 4)
            y -= h
            when = (start + dt.timedelta(hours=i)).strftime("%H:00")
            parts.append(
                f'<rect class="s-{status}" x="{i * width + 1:.1f}" y="{y:.1f}" '
                f'width="{width - 2:.1f}" height="{h:.1f}"><title>{when} UTC: {n} {status}'
                "</title></rect>"
            )
        if i % 6 == 0:
            label = (start + dt.timedelta(hours=i)).strftime("%H:00")
            parts.append(f'<text x="{i * width + 1:.1f}" y="{_H + 14}">{label}</text>')
    parts.append(f'<text x="{_W}" y="{_H + 14}" text-anchor="end">now</text>')
    parts.append(
        f'<text class="peak" x="2" y="{_H + 14}" dy="12">tallest bar: {peak} runs/h</text>'
    )
    return _svg("".join(parts), f"runs per hour over the last {hours} hours, by status")


class _Timed(Protocol):
    @property
    def duration_s(self) -> float | None: ...
    @property
    def started_at(self) -> dt.datetime | None: ...
    @property
    def heartbeat_at(self) -> dt.datetime | None: ...
    @property
    def finished_at(self) -> dt.datetime | None: ...


def run_duration_s(run: _Timed) -> float | None:
    """The run's duration: the indexer's own figure, else finished (or last beat) − started."""
    if run.duration_s is not None:
        return run.duration_s
    end = run.finished_at or run.heartbeat_at
    if run.started_at is None or end is None:
        return None
    return max((end - run.started_at).total_seconds(), 0.0)


def duration_bars(runs: Sequence[Run]) -> Markup:
    """One bar per run (oldest left), its height the run's duration, its colour its status."""
    timed = [(run, run_duration_s(run)) for run in reversed(runs)]
    peak = max((d for _, d in timed if d is not None), default=0.0) or 1.0
    width = _W / max(len(timed), _MIN_SLOTS)
    parts = []
    for i, (run, duration) in enumerate(timed):
        h = max((duration or 0.0) / peak * (_H - 4), 1.5)
        shown = "-" if duration is None else f"{duration:.2f} s"
        parts.append(
            f'<a href="/ui/runs/{run.id}"><rect class="s-{run.status}" x="{i * width + 1:.1f}" '
            f'y="{_H - h:.1f}" width="{max(width - 2, 1):.1f}" height="{h:.1f}">'
            f"<title>run {run.id}: {run.status}, {shown}</title></rect></a>"
        )
    parts.append(f'<text class="peak" x="2" y="{_H + 14}">tallest bar: {peak:.2f} s</text>')
    return _svg("".join(parts), "durations of the cabinet's recent runs")
