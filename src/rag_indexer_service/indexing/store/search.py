"""Hybrid search in one cabinet: cosine distance and full-text rank fused by RRF.

One statement reads `rag_cabinets.active_generation` and the chunks, so it sees a single
snapshot: either the generation before a swap or the one after, never half of each. With an
`embedder_id` it returns nothing unless the active generation was built by that embedder, so
query vectors are only ever compared with vectors of the same model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rag_indexer_service.indexing.embedders import Vectors

__all__ = ["SearchHit", "search_chunks"]

_RRF_K = 60

_SQL = text(
    f"""
    WITH g AS (
        SELECT active_generation AS gen FROM rag_cabinets
        WHERE cabinet_id = :c
          AND (CAST(:e AS text) IS NULL OR embedder_id = CAST(:e AS text))
    ),
    q AS (
        SELECT websearch_to_tsquery('russian', :qt)
               || websearch_to_tsquery('english', :qt) AS tsq
    ),
    vec AS (
        SELECT kind, doc_id, chunk_no,
               row_number() OVER (ORDER BY embedding <=> :qv) AS r
        FROM rag_chunks WHERE cabinet_id = :c AND generation = (SELECT gen FROM g)
        ORDER BY embedding <=> :qv LIMIT :pool
    ),
    kw AS (
        SELECT kind, doc_id, chunk_no,
               row_number() OVER (ORDER BY ts_rank_cd(tsv, q.tsq) DESC) AS r
        FROM rag_chunks, q
        WHERE cabinet_id = :c AND generation = (SELECT gen FROM g) AND tsv @@ q.tsq
        ORDER BY ts_rank_cd(tsv, q.tsq) DESC LIMIT :pool
    ),
    fused AS (
        SELECT COALESCE(vec.kind, kw.kind) AS kind,
               COALESCE(vec.doc_id, kw.doc_id) AS doc_id,
               COALESCE(vec.chunk_no, kw.chunk_no) AS chunk_no,
               vec.r AS vector_rank, kw.r AS text_rank,
               COALESCE(1.0 / ({_RRF_K} + vec.r), 0)
               + COALESCE(1.0 / ({_RRF_K} + kw.r), 0) AS score
        FROM vec FULL OUTER JOIN kw USING (kind, doc_id, chunk_no)
    )
    SELECT f.kind, f.doc_id, f.chunk_no, ch.content, ch.metadata, f.score,
           f.vector_rank, f.text_rank
    FROM fused f
    JOIN rag_chunks ch ON ch.cabinet_id = :c AND ch.generation = (SELECT gen FROM g)
         AND ch.kind = f.kind AND ch.doc_id = f.doc_id AND ch.chunk_no = f.chunk_no
    ORDER BY f.score DESC, f.kind, f.doc_id, f.chunk_no
    LIMIT :k
    """
)


@dataclass(frozen=True, slots=True)
class SearchHit:
    kind: str
    doc_id: str
    chunk_no: int
    content: str
    metadata: dict[str, Any]
    score: float
    vector_rank: int | None
    text_rank: int | None


async def search_chunks(
    conn: AsyncConnection,
    cabinet_id: int,
    *,
    query_text: str,
    query_vector: Vectors,
    k: int,
    candidates: int = 50,
    embedder_id: str | None = None,
) -> list[SearchHit]:
    """The `k` best chunks of the cabinet's active generation (built by `embedder_id`, if
    given; otherwise whatever built it)."""
    params = {
        "c": cabinet_id,
        "e": embedder_id,
        "qt": query_text,
        "qv": np.asarray(query_vector, dtype=np.float32),
        "pool": max(k, candidates),
        "k": k,
    }
    rows = await conn.execute(_SQL, params)
    return [
        SearchHit(
            kind=r.kind,
            doc_id=r.doc_id,
            chunk_no=r.chunk_no,
            content=r.content,
            metadata=r.metadata,
            score=float(r.score),
            vector_rank=r.vector_rank,
            text_rank=r.text_rank,
        )
        for r in rows
    ]
