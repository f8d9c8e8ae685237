"""`db upgrade`, `demo seed` and `sources check`: the schema, the demo source, the sources file."""

from __future__ import annotations

import json
import textwrap
from typing import Annotated, Any

import typer

from rag_indexer_service.cli.base import (
    CliError,
    cabinet_id_or_exit,
    db_app,
    demo_app,
    out,
    run_command,
    sources_app,
)
from rag_indexer_service.config import Settings


@db_app.command("upgrade", short_help="Create the schema or apply pending migrations.")
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

    out.print(f"schema at revision {run_command(go)}")


@demo_app.command("seed", short_help="Create and fill the demo source (replaces demo data).")
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

    out.print(run_command(go), markup=False)


@sources_app.command("check", short_help="Check the sources file; print one document per kind.")
def sources_check(
    cabinet: Annotated[
        str | None,
        typer.Option(
            metavar="ID", help="Cabinet to render samples from (default: the first one listed)."
        ),
    ] = None,
) -> None:
    """Check the sources file against the source's real columns and print one rendered
    document per kind: what the indexer will embed."""
    chosen = None if cabinet is None else cabinet_id_or_exit(cabinet)

    async def go(settings: Settings) -> tuple[str, int | None, list[Any]]:
        from contextlib import aclosing

        from rag_indexer_service.indexing.source_check import (
            check_source_columns,
            sample_documents,
        )
        from rag_indexer_service.indexing.sources import load_source_spec
        from rag_indexer_service.runtime import open_runtime
        from rag_indexer_service.service import ensure_listed

        async with open_runtime(settings, pool_size=1) as rt:
            spec = load_source_spec(settings.sources_file)
            await check_source_columns(rt.db.source_engine, spec, strict=True)
            cabinet_id = chosen
            if cabinet_id is not None:
                await ensure_listed(source=rt.source, cabinet_id=cabinet_id)
            else:
                async with aclosing(rt.source.iter_cabinet_ids()) as ids:
                    cabinet_id = await anext(ids, None)
            if cabinet_id is None:
                return str(settings.sources_file), None, []
            return (
                str(settings.sources_file),
                cabinet_id,
                await sample_documents(rt.db.source_engine, spec, cabinet_id),
            )

    path, cabinet_id, samples = run_command(go)
    out.print(
        f"sources file {path}: OK, every query runs and returns every column it needs",
        markup=False,
        soft_wrap=True,
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
