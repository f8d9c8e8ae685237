"""Row-level helpers every store module shares: the one "delete a cabinet's rows" statement
pair and the asyncpg connection under SQLAlchemy (for COPY)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["RowCounts", "delete_rows", "driver_connection"]


@dataclass(frozen=True, slots=True)
class RowCounts:
    documents: int
    chunks: int


async def driver_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under a SQLAlchemy connection (for COPY)."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def delete_rows(
    conn: AsyncConnection,
    cabinet_id: int,
    *,
    generation: int | None = None,
    kind: str | None = None,
    doc_ids: Sequence[str] | None = None,
) -> RowCounts:
    """Delete documents and their chunks: of one generation or all, of some documents of one
    kind or all. `doc_id = ANY(…)` walks the primary key."""
    where = ["cabinet_id = :c"]
    params: dict[str, Any] = {"c": cabinet_id}
    if generation is not None:
        where.append("generation = :g")
        params["g"] = generation
    if kind is not None:
        where.append("kind = :k")
        params["k"] = kind
    if doc_ids is not None:
        where.append("doc_id = ANY(CAST(:ids AS text[]))")
        params["ids"] = list(doc_ids)
    condition = " AND ".join(where)
    chunks_deleted = await conn.execute(text(f"DELETE FROM rag_chunks WHERE {condition}"), params)
    docs_deleted = await conn.execute(text(f"DELETE FROM rag_documents WHERE {condition}"), params)
    return RowCounts(documents=int(docs_deleted.rowcount), chunks=int(chunks_deleted.rowcount))
