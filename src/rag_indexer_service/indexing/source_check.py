"""Check a sources file against the source's real columns, and render sample documents.

Each query is described with `SELECT * FROM (query) LIMIT 0` (planned, never run), so a
template, `metadata` entry or `id_column` naming a column the query does not return stops the
process at start with one line naming the kind and the column, instead of giving runs in
which every document fails.
"""

from __future__ import annotations

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


async def _columns(engine: AsyncEngine, query: str, where: str) -> list[str] | None:
    """The columns `query` returns, or None when that cannot be known now (unreachable
    source, missing table: the runs report those)."""
    sql = f"SELECT * FROM ({query.strip().rstrip(';')}) AS rag_describe LIMIT 0"
    params = {"cabinet_id": 0} if ":cabinet_id" in query else {}
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).keys())
    except (SQLAlchemyError, OSError) as exc:
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


async def check_source_columns(engine: AsyncEngine, spec: SourceSpec) -> None:
    """Raise a one-line `ConfigError` if a query lacks a column its kind uses."""
    columns = await _columns(engine, spec.cabinets_query, "cabinets.query")
    if columns is not None:
        _require(columns, [("cabinets.query", "cabinet_id")], "cabinets.query")
    for kind in spec.kinds:
        query_where = f"kinds.{kind.name}.query"
        columns = await _columns(engine, kind.query, query_where)
        if columns is None:
            continue
        wanted = [(f"kinds.{kind.name}.id_column", kind.id_column)]
        wanted += [(f"kinds.{kind.name}.template", f) for f in sorted(kind.template_fields)]
        wanted += [(f"kinds.{kind.name}.metadata", m) for m in kind.metadata]
        _require(columns, wanted, query_where)


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
