"""`index` and `search`: index cabinets now (or queue them), search one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rag_indexer_service.cli.base import (
    CliError,
    app,
    err,
    fail,
    out,
    parse_cabinet_id,
    run_command,
)
from rag_indexer_service.config import Settings
from rag_indexer_service.errors import CabinetNotFound, CabinetNotIndexed, RagIndexerError
from rag_indexer_service.indexing.report import IndexReport


def _report_line(report: IndexReport, run_id: int) -> str:
    """`cabinet 3 (run 7): 281 seen, 281 added, 281 chunks embedded in 1.38 s`: no zeros."""
    return f"cabinet {report.cabinet_id} (run {run_id}): {report.summary()}"


@app.command(short_help="Index cabinets now (or queue runs for the workers: --queue).")
def index(
    cabinet_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Cabinet ids to index, one or more.", show_default=False, metavar="ID"),
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
        raise fail("give cabinet ids or --all (not both)", code=2)
    try:
        ids = [parse_cabinet_id(raw) for raw in cabinet_ids or []]
    except CliError as exc:
        raise fail(str(exc), code=2) from None
    if queue and allow_mass_delete:
        raise fail("--allow-mass-delete applies to inline runs only", code=2)
    results = run_command(
        lambda s: (
            _enqueue(s, ids, as_json, force=force)
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


async def _enqueue(
    settings: Settings, ids: list[int], as_json: bool, *, force: bool
) -> list[dict[str, Any]]:
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
                return await dispatcher.enqueue_cabinets(cabinet_ids, how, force=force)
            created, active = await ledger.request_many_ids(
                cabinet_ids, how, QUEUE_MANUAL, force=force
            )
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
                        force=force,
                    )
                else:  # for `up`, which takes runs queued without a message from the ledger
                    await ensure_listed(source=rt.source, cabinet_id=cabinet_id)
                    run, created = await ledger.request(
                        cabinet_id, "cli", QUEUE_MANUAL, force=force
                    )
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
                    message = str(exc)
                    if f"cabinet {cabinet_id}" not in message:
                        message = f"cabinet {cabinet_id}: {message}"
                    err.print(f"error: {message}", markup=False)
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
        int, typer.Option("-k", min=1, max=50, metavar="N", help="Results to return (1-50).")
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
        raise fail(str(exc), code=2) from None
    if not query.strip():
        raise fail("the query is empty", code=2)

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
                "expansions": list(h.expansions),
                "kind_match": h.kind_match,
                "content": h.content,
                "metadata": h.metadata,
            }
            for h in hits
        ]

    hits = run_command(go)
    if as_json:
        out.print_json(json.dumps(hits, ensure_ascii=False))
        return
    if not hits:
        out.print("no results")
    for n, hit in enumerate(hits, 1):
        ranks = f"vector #{hit['vector_rank'] or '-'}, keyword #{hit['text_rank'] or '-'}"
        words = ", ".join(hit["matched_terms"]) or "none"
        if hit["expansions"]:
            words += "; synonyms: " + ", ".join(hit["expansions"])
        if hit["kind_match"]:
            words += f"; kind {hit['kind']} asked for"
        where = escape(f"{hit['kind']}/{hit['doc_id']}#{hit['chunk_no']}")
        out.print(
            f"[bold]{n}. {where}[/] score={hit['score']} similarity={hit['similarity']} "
            f"({ranks}; matched: {escape(words)})",
            highlight=False,
        )
        out.print(hit["content"][:400], markup=False, highlight=False)
        out.print()
