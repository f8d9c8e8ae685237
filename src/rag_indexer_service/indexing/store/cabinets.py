"""SQL on whole cabinets: dropping one, cabinet
records for the API, fan-out and metrics, and inspection reads.

Each function takes a connection, so callers choose the transaction. `record_last_run` is
called by the run ledger inside the transaction that finishes a run.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rag_indexer_service.indexing.store.protocol import (
    CabinetRecord,
    IndexTotals,
    SkipState,
    StoredChunk,
)
from rag_indexer_service.indexing.store.rows import RowCounts, delete_rows
from rag_indexer_service.indexing.store.watermarks import delete_watermarks

__all__ = [
    "cabinet_record",
    "cabinet_records",
    "chunks",
    "drop_cabinet",
    "index_totals",
    "indexed_cabinet_ids",
    "record_last_run",
    "row_counts",
    "skip_states",
]


async def drop_cabinet(conn: AsyncConnection, cabinet_id: int) -> RowCounts:
    counts = await delete_rows(conn, cabinet_id)
    await delete_watermarks(conn, cabinet_id)
    await conn.execute(text("DELETE FROM rag_cabinets WHERE cabinet_id = :c"), {"c": cabinet_id})
    return counts


async def record_last_run(conn: AsyncConnection, cabinet_id: int, run_id: int) -> None:
    await conn.execute(
        text(
            "INSERT INTO rag_cabinets (cabinet_id, last_run_id) VALUES (:c, :r) "
            "ON CONFLICT (cabinet_id) DO UPDATE SET last_run_id = EXCLUDED.last_run_id"
        ),
        {"c": cabinet_id, "r": run_id},
    )


_RECORD_COLUMNS = (
    "cabinet_id, embedder_id, source_fingerprint, document_count, chunk_count, "
    "last_indexed_at, last_success_at, "
    "EXTRACT(EPOCH FROM now() - last_success_at)::float8 AS staleness_s, last_run_id"
)


async def cabinet_record(conn: AsyncConnection, cabinet_id: int) -> CabinetRecord | None:
    row = (
        await conn.execute(
            text(f"SELECT {_RECORD_COLUMNS} FROM rag_cabinets WHERE cabinet_id = :c"),
            {"c": cabinet_id},
        )
    ).first()
    return None if row is None else CabinetRecord(*row)


async def cabinet_records(
    conn: AsyncConnection, cabinet_ids: Sequence[int]
) -> dict[int, CabinetRecord]:
    """`cabinet_id -> CabinetRecord` for those of `cabinet_ids` with a row (the listing)."""
    if not cabinet_ids:
        return {}
    rows = await conn.execute(
        text(
            f"SELECT {_RECORD_COLUMNS} FROM rag_cabinets "
            "WHERE cabinet_id = ANY(CAST(:ids AS bigint[]))"
        ),
        {"ids": list(cabinet_ids)},
    )
    return {row[0]: CabinetRecord(*row) for row in rows}


async def skip_states(conn: AsyncConnection, cabinet_ids: Sequence[int]) -> dict[int, SkipState]:
    rows = await conn.execute(
        text(
            "SELECT cabinet_id, source_fingerprint, embedder_id, last_run_id FROM rag_cabinets "
            "WHERE cabinet_id = ANY(CAST(:ids AS bigint[]))"
        ),
        {"ids": list(cabinet_ids)},
    )
    return {r[0]: SkipState(r[1], r[2], r[3]) for r in rows}


async def indexed_cabinet_ids(conn: AsyncConnection) -> list[int]:
    return list(await conn.scalars(text("SELECT cabinet_id FROM rag_cabinets")))


async def index_totals(conn: AsyncConnection) -> IndexTotals:
    row = (
        await conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE last_success_at IS NOT NULL), "
                "COALESCE(sum(document_count), 0), COALESCE(sum(chunk_count), 0) "
                "FROM rag_cabinets"
            )
        )
    ).one()
    return IndexTotals(cabinets_indexed=int(row[0]), documents=int(row[1]), chunks=int(row[2]))


async def row_counts(conn: AsyncConnection, cabinet_id: int) -> RowCounts:
    row = (
        await conn.execute(
            text(
                "SELECT (SELECT count(*) FROM rag_documents WHERE cabinet_id = :c), "
                "(SELECT count(*) FROM rag_chunks WHERE cabinet_id = :c)"
            ),
            {"c": cabinet_id},
        )
    ).one()
    return RowCounts(documents=int(row[0]), chunks=int(row[1]))


async def chunks(conn: AsyncConnection, cabinet_id: int) -> list[StoredChunk]:
    rows = await conn.execute(
        text(
            "SELECT generation, kind, doc_id, chunk_no, content, embedding FROM rag_chunks "
            "WHERE cabinet_id = :c ORDER BY generation, doc_id, chunk_no"
        ),
        {"c": cabinet_id},
    )
    return [StoredChunk(*r) for r in rows]
