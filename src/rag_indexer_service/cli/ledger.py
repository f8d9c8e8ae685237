"""`runs` and `status`: the run ledger and the schedulers, as tables or JSON."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from rag_indexer_service.cli.base import (
    CliError,
    app,
    fail,
    out,
    parse_cabinet_id,
    run_command,
)
from rag_indexer_service.config import Settings


@app.command()
def runs(
    cabinet: Annotated[
        str | None, typer.Option("--cabinet", metavar="ID", help="Only this cabinet.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            metavar="STATUS",
            help="Only this status (queued, running, retrying, succeeded, failed, skipped).",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, metavar="N", help="How many, newest first.")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print runs as a JSON list.")] = False,
) -> None:
    """List indexing runs, newest first."""
    from rag_indexer_service.runs import RUN_STATUSES

    try:
        cabinet_id = None if cabinet is None else parse_cabinet_id(cabinet)
    except CliError as exc:
        raise fail(str(exc), code=2) from None
    if status is not None and status not in RUN_STATUSES:
        raise fail(f"unknown status {status!r}; one of: {', '.join(RUN_STATUSES)}", code=2)

    async def go(settings: Settings) -> list[dict[str, Any]]:
        from rag_indexer_service.db import open_database
        from rag_indexer_service.runs import Ledger

        db = await open_database(settings)
        try:
            found = await Ledger(db.engine).list_runs(
                cabinet_id=cabinet_id,
                status=status,
                limit=limit,
            )
        finally:
            await db.close()
        return [run.to_dict() for run in found]

    found = run_command(go)
    if as_json:
        out.print_json(json.dumps(found, ensure_ascii=False))
        return
    printer = out if out.is_terminal else Console(width=max(out.width, 120))
    printer.print(runs_table(found, width=printer.width))


_ESSENTIAL = (
    "run",
    "cabinet",
    "status",
    "trigger",
    "try",
    "docs",
    "embedded",
    "queued UTC",
    "took",
)
_GAP = 2  # rich's padding between two columns (SIMPLE_HEAD, padding (0, 1), collapsed)


def runs_table(found: list[dict[str, Any]], *, width: int) -> Table:
    """The runs as a table that fits `width`: its essential columns whole (ids, status,
    counts, when, how long), then the read mode, the error and the counters as room allows.
    Piped output is given 120 columns or more, so every counter name stays readable."""
    cells: dict[str, list[str]] = {name: [] for name in (*_ESSENTIAL, "read", "counters")}
    cells["error"] = []
    for r in found:
        row = (
            str(r["run_id"]),
            str(r["cabinet_id"]),
            r["status"],
            r["trigger"],
            str(r["attempt"]),
            "" if r["docs_seen"] is None else str(r["docs_seen"]),
            "" if r["chunks_embedded"] is None else str(r["chunks_embedded"]),
            r["queued_at"][5:16].replace("T", " "),
            _took(r),
            _read(r),
            _counters_cell(r),
            r["error"] or "",
        )
        for name, value in zip(cells, row, strict=True):
            cells[name].append(value)

    def natural(name: str) -> int:
        return max(len(line) for v in [name, *cells[name]] for line in v.splitlines() or [""])

    shown = list(_ESSENTIAL)
    used = sum(natural(n) for n in shown) + _GAP * (len(shown) - 1)
    errors = any(cells["error"])
    for name in ("read", "counters"):
        keep_for_error = 20 + _GAP if errors and name == "counters" else 0
        if used + _GAP + natural(name) + keep_for_error <= width:
            shown.append(name)
            used += _GAP + natural(name)
    if errors and width - used - _GAP >= 12:
        shown.append("error")

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for name in shown:
        numeric = name in ("run", "cabinet", "try", "docs", "embedded", "took")
        if name == "error":
            table.add_column(name, overflow="ellipsis", no_wrap=True)
        else:
            table.add_column(name, no_wrap=True, justify="right" if numeric else "left")
    for i in range(len(found)):
        table.add_row(*(cells[name][i] for name in shown))
    return table


def _read(run: dict[str, Any]) -> str:
    """How the run read the source: `delta`, `full (why)`, `skipped`; `forced` if it was."""
    mode = run["mode"] or ""
    if mode == "full" and run["full_reason"]:
        mode = f"full ({run['full_reason']})"
    return mode if not run["forced"] or "forced" in mode else f"{mode} forced".strip()


def _counters_cell(run: dict[str, Any]) -> str:
    """The run's counters that are set and not zero (flags by name alone), one a line."""
    from rag_indexer_service.indexing.report import COUNTER_TYPES

    shown = []
    for name, kind in COUNTER_TYPES.items():
        value = run.get(name)
        if value:
            shown.append(name if kind is bool else f"{name} {value}")
    return "\n".join(shown)


def _took(run: dict[str, Any]) -> str:
    """The run's duration: the indexer's figure, else finished − started."""

    seconds = run["duration_s"]
    if seconds is None and run["started_at"] and run["finished_at"]:
        started = dt.datetime.fromisoformat(run["started_at"])
        seconds = (dt.datetime.fromisoformat(run["finished_at"]) - started).total_seconds()
    if seconds is None:
        return ""
    return f"{seconds:.1f}s" if seconds < 600 else f"{seconds / 60:.0f}m"


def _when(value: str | None) -> str:
    return "-" if value is None else value[:19].replace("T", " ")


@app.command(short_help="Show the schedulers, recent ticks and runs by status.")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show the schedulers (last tick, next tick, last reaper pass), recent ticks and runs.

    A scheduler without a heartbeat for 3 × RAG_REAPER_INTERVAL_S is shown as gone."""

    async def go(settings: Settings) -> dict[str, Any]:
        from rag_indexer_service.db import open_database
        from rag_indexer_service.scheduling import scheduler_status

        db = await open_database(settings)
        try:
            found = await scheduler_status(db.engine, silent_after_s=3 * settings.reaper_interval_s)
        finally:
            await db.close()
        return found.to_dict()

    found = run_command(go)
    if as_json:
        out.print_json(json.dumps(found, ensure_ascii=False))
        return
    if not found["schedulers"]:
        out.print("no scheduler has run yet")
    elif not any(s["alive"] for s in found["schedulers"]):
        out.print("no scheduler is alive")
    for s in sorted(found["schedulers"], key=lambda s: not s["alive"]):  # alive ones first
        if not s["alive"]:
            how = "stopped" if s["state"] == "stopped" else "no heartbeat"
            out.print(
                f"scheduler {s['scheduler_id']}: gone since {_when(s['gone_since'])} ({how})",
                markup=False,
                soft_wrap=True,
            )
            continue
        out.print(
            f"scheduler {s['scheduler_id']} (alive, cron {s['schedule']}): "
            f"last tick {_when(s['last_tick_at'])}, next tick {_when(s['next_tick_at'])}, "
            f"last reaper pass {_when(s['last_reaper_at'])}",
            markup=False,
            soft_wrap=True,
        )
    for t in found["ticks"]:
        done = "finished" if t["finished_at"] else "unfinished"
        out.print(
            f"tick {_when(t['tick_at'])} by {t['claimed_by']} ({done}): "
            f"{t['cabinets_seen']} seen, {t['cabinets_enqueued']} queued, "
            f"{t['cabinets_skipped']} skipped as unchanged, {t['cabinets_active']} already active, "
            f"{t['cabinets_purged']} purged" + (f"; {t['error']}" if t["error"] else ""),
            markup=False,
            soft_wrap=True,
        )
    runs_line = ", ".join(f"{k} {v}" for k, v in found["runs_by_status"].items())
    out.print(f"runs: {runs_line}", markup=False, soft_wrap=True)
