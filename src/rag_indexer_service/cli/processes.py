"""`worker`, `up`, `api` and `scheduler`: the long-running processes."""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from typing import Annotated

import typer

from rag_indexer_service.cli.base import (
    CliError,
    app,
    fail,
    run_command,
)
from rag_indexer_service.config import Settings, load_settings
from rag_indexer_service.errors import RagIndexerError


@app.command(short_help="Start Dramatiq workers that execute queued runs.")
def worker(
    processes: Annotated[
        int,
        typer.Option(
            min=1, metavar="N", show_default=False, help="Worker processes (default: CPU count)."
        ),
    ] = max(os.cpu_count() or 1, 1),
    threads: Annotated[
        int, typer.Option(min=1, metavar="N", help="Concurrent runs per process.")
    ] = 2,
    queues: Annotated[
        list[str] | None,
        typer.Option(
            "--queues",
            metavar="QUEUE",
            help=(
                "A queue to consume; repeat for more (default: rag-manual, rag-scheduled "
                "and rag-indexes)."
            ),
        ),
    ] = None,
    shutdown_timeout_s: Annotated[
        float,
        typer.Option(
            min=0, metavar="SECONDS", help="On SIGTERM, wait this long for runs in flight."
        ),
    ] = 600.0,
) -> None:
    """Start Dramatiq workers that execute queued runs (needs RAG_BROKER_URL)."""
    from rag_indexer_service.db.embedded import leave_embedded_postgres
    from rag_indexer_service.indexing.source_check import check_sources
    from rag_indexer_service.jobs.broker import QUEUES, build_broker

    try:
        settings = load_settings()
        build_broker(settings)
    except RagIndexerError as exc:
        raise fail(str(exc)) from None
    run_command(check_sources)
    known = set(QUEUES)
    chosen = queues or list(QUEUES)
    unknown = set(chosen) - known
    if unknown:
        raise fail(f"unknown queue(s) {sorted(unknown)}; known: {sorted(known)}", code=2)
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "rag_indexer_service.jobs.worker_main",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--worker-shutdown-timeout",
        str(int(shutdown_timeout_s * 1000)),
        "--queues",
        *chosen,
    ]
    env = dict(os.environ)
    # Fetch no more than we can run: one process must not hoard long runs.
    env.setdefault("dramatiq_queue_prefetch", str(threads))
    # An idle worker polls Redis every 100 ms instead of every second: a click starts a run
    # within ~0.1 s for ~10 cheap Redis calls per second per queue and process.
    env.setdefault("dramatiq_worker_timeout", "100")
    # exec runs no atexit handlers: leave the embedded Postgres the sources check joined.
    leave_embedded_postgres()
    os.execvpe(sys.executable, argv, env)


@app.command(short_help="Run API, console, worker and scheduler in one process.")
def up(
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed the demo source if empty and index it once.")
    ] = False,
    host: Annotated[
        str | None, typer.Option(metavar="HOST", help="Address to bind (RAG_API_HOST).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, metavar="PORT", help="Port to listen on (RAG_API_PORT)."),
    ] = None,
) -> None:
    """Run everything in one process: API, worker and scheduler on the embedded default."""

    async def go(settings: Settings) -> int:
        from rag_indexer_service.allinone import run_all_in_one

        return await run_all_in_one(
            settings,
            host=host or settings.api_host,
            port=port or settings.api_port,
            seed_demo=demo,
        )

    code = run_command(go, quiet=False)
    raise typer.Exit(code)


@app.command(short_help="Serve the HTTP API and the console (uvicorn).")
def api(
    host: Annotated[
        str | None, typer.Option(metavar="HOST", help="Address to bind (default: RAG_API_HOST).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, metavar="PORT", help="Port (default: RAG_API_PORT)."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, metavar="N", help="Server processes.")] = 1,
) -> None:
    """Serve the HTTP API with uvicorn (needs RAG_BROKER_URL and RAG_API_KEYS)."""
    from rag_indexer_service.api.server import serve

    try:
        serve(load_settings(), host=host, port=port, workers=workers)
    except RagIndexerError as exc:
        raise fail(str(exc)) from None


@app.command(short_help="Start the scheduler: the cron fan-out and the reaper.")
def scheduler(
    once: Annotated[bool, typer.Option("--once", help="Run one fan-out now and exit.")] = False,
    tick_at: Annotated[
        str | None,
        typer.Option(
            "--tick-at",
            metavar="TIME",
            help="With --once: the tick to serve (ISO 8601, UTC if no offset) instead of now; "
            "replicas given the same time fan out once.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start the scheduler: fan out all cabinets on RAG_SCHEDULE_CRON and re-drive stale runs
    (needs RAG_BROKER_URL). Any number of replicas may run: each tick fans out once."""
    from rag_indexer_service.scheduling import run_scheduler

    if tick_at is not None and not once:
        raise fail("--tick-at applies to --once only", code=2)
    try:
        tick = None if tick_at is None else parse_tick_time(tick_at)
    except CliError as exc:
        raise fail(str(exc), code=2) from None
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    raise typer.Exit(run_command(lambda s: run_scheduler(s, once=once, tick_at=tick), quiet=False))


def parse_tick_time(raw: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise CliError(f"--tick-at {raw!r} is not an ISO 8601 time") from None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
