"""Check a sources file against the source's real columns, and render sample documents.

Each query (the kinds' `query`, `changed_query` and `ids_query`, the cabinets' `query`,
`fingerprint` and `watermark`) is described with `SELECT * FROM (query) LIMIT 0` (planned,
never run), so a template, `metadata` entry or `id_column` naming a column a query does not
return stops the process at start with one line naming the kind and the column, instead of
giving runs in which every document fails. At start a query that cannot be described now (a
table not created yet) is logged and left to the runs; `sources check` (strict) refuses it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from rag_indexer_service.config import Settings
from rag_indexer_service.db import open_database
from rag_indexer_service.db.engine import is_connection_error, short_error
from rag_indexer_service.errors import ConfigError, SourceQueryError
from rag_indexer_service.indexing.sources import (
    RenderError,
    SourceDocument,
    SourceSpec,
    load_source_spec,
)

__all__ = ["KindSample", "check_source_columns", "check_sources", "sample_documents"]

log = logging.getLogger(__name__)


_DESCRIBE_PARAMS: dict[str, object] = {
    "cabinet_id": 0,
    "since": dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
}


async def _columns(
    engine: AsyncEngine, query: str, where: str, *, strict: bool
) -> list[str] | None:
    """The columns `query` returns, or None when that cannot be known now (unreachable
    source, missing table: the runs report those); `strict`: a `ConfigError` instead."""
    sql = f"SELECT * FROM ({query.strip().rstrip(';')}) AS rag_describe LIMIT 0"
    params = {name: value for name, value in _DESCRIBE_PARAMS.items() if f":{name}" in query}
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).keys())
    except (SQLAlchemyError, OSError) as exc:
        if strict:
            raise ConfigError(
                f"RAG_SOURCES_FILE: {where} cannot be run: {short_error(exc)}"
            ) from exc
        # A table the demo seeds later, say: the runs will report it if it stays missing.
        unreachable = is_connection_error(exc)
        log.log(
            logging.WARNING if unreachable else logging.INFO,
            "RAG_SOURCES_FILE: could not describe %s now (%s)",
            where,
            "source unreachable" if unreachable else short_error(exc),
        )
        return None


def _require(columns: list[str], wanted: list[tuple[str, str]], query_where: str) -> None:
    returned = ", ".join(columns)
    for where, column in wanted:
        if column not in columns:
            raise ConfigError(
                f"RAG_SOURCES_FILE: {where} names column {column!r}, which {query_where} "
                f"does not return (it returns: {returned})"
            )


async def check_source_columns(
    engine: AsyncEngine, spec: SourceSpec, *, strict: bool = False
) -> None:
    """Raise a one-line `ConfigError` if a query lacks a column its kind uses (`strict`:
    also if a query cannot be described now)."""
    columns = await _columns(engine, spec.cabinets_query, "cabinets.query", strict=strict)
    if columns is not None:
        _require(columns, [("cabinets.query", "cabinet_id")], "cabinets.query")
    for query, where in (
        (spec.fingerprint_query, "cabinets.fingerprint"),
        (spec.watermark_query, "cabinets.watermark"),
    ):
        if query is not None:
            await _columns(engine, query, where, strict=strict)
    for kind in spec.kinds:
        wanted = [(f"kinds.{kind.name}.id_column", kind.id_column)]
        wanted += [(f"kinds.{kind.name}.template", f) for f in sorted(kind.template_fields)]
        wanted += [(f"kinds.{kind.name}.metadata", m) for m in kind.metadata]
        queries = [(kind.query, "query", wanted), (kind.changed_query, "changed_query", wanted)]
        queries.append((kind.ids_query, "ids_query", wanted[:1]))
        for query, name, needs in queries:
            if query is None:
                continue
            query_where = f"kinds.{kind.name}.{name}"
            columns = await _columns(engine, query, query_where, strict=strict)
            if columns is not None:
                _require(columns, needs, query_where)


async def check_sources(settings: Settings) -> None:
    """`check_source_columns` for a process about to start (`rag-indexer api`, `worker`)."""
    spec = load_source_spec(settings.sources_file)
    db = await open_database(settings, pool_size=1)
    try:
        await check_source_columns(db.source_engine, spec)
    finally:
        await db.close()


@dataclass(frozen=True, slots=True)
class KindSample:
    kind: str
    document: SourceDocument | None
    """The first row of the kind, rendered; None when the cabinet has no such row."""


async def sample_documents(
    engine: AsyncEngine, spec: SourceSpec, cabinet_id: int
) -> list[KindSample]:
    """The first document of each kind of one cabinet, rendered as the indexer would."""
    samples = []
    for kind in spec.kinds:
        sql = f"SELECT * FROM ({kind.query.strip().rstrip(';')}) AS rag_sample LIMIT 1"
        try:
            async with engine.connect() as conn:
                row = (await conn.execute(text(sql), {"cabinet_id": cabinet_id})).mappings().first()
        except (SQLAlchemyError, OSError) as exc:
            raise SourceQueryError(
                f"kinds.{kind.name}.query failed for cabinet {cabinet_id}: {short_error(exc)}"
            ) from exc
        if row is None:
            samples.append(KindSample(kind.name, None))
            continue
        try:
            samples.append(KindSample(kind.name, kind.render(row)))
        except RenderError as exc:
            samples.append(KindSample(kind.name, SourceDocument(kind.name, "", "", {}, str(exc))))
    return samples
