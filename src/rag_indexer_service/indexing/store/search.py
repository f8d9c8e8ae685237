"""Hybrid search in one cabinet: cosine distance and full-text rank fused by RRF.

The vector side is exact (`ORDER BY embedding <=> q` over the cabinet's rows, found through
the primary key prefix) unless the cabinet's generation has a valid ANN index (`ann.py`:
an IVFFlat index on `embedding::halfvec(dim)`, partial to that cabinet and generation); then
the `probes_factor` × √lists lists nearest the query give the candidates. The keyword side
finds matches through the cabinet's own full-text index where it has one (`ann.py`; else the
table-wide one) and ranks at most `keyword_candidates` of them, so a word that occurs in
every chunk of a big cabinet costs a bounded amount. A word that many chunks of the table
hold (`_COMMON_FREQ`: "товар", "заказ", the reviews' headers) is not required, only ranked
by, as in Elasticsearch's common terms query. Content, metadata and the tsvector
(out of line) are read only for the `k` hits returned.

Each hit says why it was found: the cosine similarity of its vector to the query's (exact,
from the stored vector, also for keyword-only hits), its rank on each side, the query words
that occur in it, and the fused score. `min_similarity` drops hits the keyword side did not
find whose similarity is below it, so "nothing relevant" is an empty list.

Both statements run in one REPEATABLE READ transaction (`Store.search`): the generation read
from `rag_cabinets.active_generation` and the chunks come from one snapshot, so a search sees
the generation before a swap or the one after, never half of each. With an `embedder_id` it
returns nothing unless the active generation was built by that embedder, so query vectors are
only ever compared with vectors of the same model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rag_indexer_service.indexing.embedders import Vectors
from rag_indexer_service.indexing.store.ann import ann_index_name
from rag_indexer_service.indexing.store.keyword_query import KeywordQuery, build_keyword_query
from rag_indexer_service.indexing.synonyms import stems

__all__ = ["SearchHit", "SearchOptions", "search_chunks"]

_RRF_K = 60
_KEYWORD_WEIGHT = 1.5
"""Weight of the keyword side's reciprocal rank (the vector side's is 1): a keyword match,
synonyms included, is the more precise signal (benchmarks/relevance.py: +0.01 to +0.02
nDCG@10 on every query set against 1)."""
_KIND_BONUS = 1.0 / _RRF_K
"""Added to the fused score of a chunk whose kind the query names or suggests
(`keyword_query.py`): above any one rank."""
_WORK_MEM_MB = 64
_COMMON_FREQ = 0.15
"""A word in at least this share of the table's chunks is common (Elasticsearch's common
terms query, `cutoff_frequency`): matched chunks need not hold it, though it still ranks
them. Frequencies from Postgres' own statistics of `tsv` (`pg_stats.most_common_elems`,
what ANALYZE or autovacuum gathered; none yet: no word is common). benchmarks/relevance.py:
0.5 leaves only "товар" common and changes nothing; 0.15 (also "заказ", "цена", "отличный",
the reviews' headers) +0.025 on one query set, no query lower."""
_COMMON_TTL_S = 300.0
_lexeme_freqs_cache: dict[str, tuple[float, dict[str, float]]] = {}

_STATE_SQL = text(
    """
    -- The state and, in the same round trip, the transaction's settings for the search:
    -- probes = min(lists, ⌈factor × √lists⌉) of the generation's ANN index (1 without one).
    -- Custom plans: how common the query's words are decides between the full-text index
    -- (rare words) and walking the cabinet's primary key until enough matches (common ones);
    -- a generic plan cannot know. work_mem: a common word must not make the full-text bitmap
    -- lossy (a lossy bitmap rechecks, and so detoasts, every row of the pages it covers).
    SELECT s.gen, s.lists,
           set_config('ivfflat.probes', CAST(CASE WHEN s.lists IS NULL THEN 1 ELSE LEAST(
               s.lists, CAST(ceil(CAST(:pf AS float8) * sqrt(CAST(s.lists AS float8))) AS int)
           ) END AS text), true) AS probes,
           set_config('work_mem', :wm, true) AS work_mem,
           set_config('plan_cache_mode', 'force_custom_plan', true) AS plan_cache_mode
    FROM (
        SELECT c.active_generation AS gen,
               (SELECT CAST(o.option_value AS int)
                FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid,
                     pg_options_to_table(x.reloptions) o
                WHERE i.indexrelid = to_regclass(:prefix || c.active_generation)
                  AND i.indisvalid AND o.option_name = 'lists') AS lists
        FROM rag_cabinets c
        WHERE c.cabinet_id = :c AND (CAST(:e AS text) IS NULL OR c.embedder_id = CAST(:e AS text))
    ) s
    """
)


_LEXEME_FREQS_SQL = text(
    """
    SELECT CAST(CAST(most_common_elems AS text) AS text[]) AS lexemes,
           most_common_elem_freqs AS freqs
    FROM pg_stats
    WHERE schemaname = current_schema() AND tablename = 'rag_chunks' AND attname = 'tsv'
    """
)


_PRESENT_SQL = text(
    """
    SELECT t.n FROM unnest(CAST(:groups AS text[])) WITH ORDINALITY AS t(tq, n)
    WHERE EXISTS (SELECT 1 FROM rag_chunks
                  WHERE cabinet_id = :c AND generation = :g
                    AND tsv @@ to_tsquery('russian', t.tq))
    """
)


@dataclass(frozen=True, slots=True)
class SearchOptions:
    ann_min_chunks: int = 10_000
    """Cabinets (generations) with at least this many chunks get an ANN index."""
    probes_factor: float = 3.0
    """A search reads this times √lists of the ANN index's lists (`ivfflat.probes`; pgvector
    suggests √lists to start): recall against speed."""
    keyword_candidates: int = 300
    """At most this many keyword matches are ranked (in storage order past that)."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    kind: str
    doc_id: str
    chunk_no: int
    content: str
    metadata: dict[str, Any]
    score: float
    """Weighted reciprocal-rank fusion: 1.5 / (60 + keyword rank) + 1 / (60 + vector rank),
    plus 1/60 when the query names or suggests the chunk's kind (`kind_match`)."""
    vector_rank: int | None
    text_rank: int | None
    similarity: float
    """Cosine similarity of the chunk's vector to the query's (-1..1)."""
    matched_terms: tuple[str, ...]
    """Query words whose stem occurs in the chunk."""
    expansions: tuple[str, ...] = ()
    """Synonyms the chunk was found by, as "query words → synonym" (`keyword_query.py`)."""
    kind_match: bool = False
    """The query names this chunk's kind ("отзывы …" and a review) or suggests it
    ("проблемы с …": a customer's complaint, so a review)."""


def _hybrid_sql(cabinet_id: int, generation: int, ann_dim: int | None) -> Any:
    # Cabinet and generation are inlined integers: the planner can match the ANN index's
    # partial predicate only against constants, whatever it does with prepared statements.
    where = f"cabinet_id = {int(cabinet_id)} AND generation = {int(generation)}"
    similarity = "1 - (embedding <=> CAST(:qv AS vector))"
    if ann_dim is None:
        distance = "embedding <=> CAST(:qv AS vector)"
        # Here the vector side sorts the cabinet: carrying each row's vector through that
        # sort for its similarity would cost more than reading the ≤ `vpool` rows again.
        vector_similarity = "CAST(NULL AS float8)"
    else:
        half = f"halfvec({int(ann_dim)})"
        distance = f"CAST(embedding AS {half}) <=> CAST(CAST(:qv AS vector) AS {half})"
        vector_similarity = similarity
    return text(
        f"""
        WITH q AS (
            SELECT to_tsquery('russian', :qt) AS tsq, to_tsquery('russian', :qrank) AS rank,
                   to_tsquery('russian', :qown) AS own
        ),
        vr AS (
            SELECT kind, doc_id, chunk_no, row_number() OVER (ORDER BY {distance}) AS r,
                   {vector_similarity} AS similarity
            FROM rag_chunks WHERE {where}
            ORDER BY {distance} LIMIT :vpool
        ),
        matches AS MATERIALIZED (
            -- `|| ''` detoasts the tsvector once, into the materialized rows (the same value:
            -- byte for byte); else each ts_rank_cd below fetches it from TOAST again
            SELECT kind, doc_id, chunk_no, tsv || CAST('' AS tsvector) AS tsv,
                   {similarity} AS similarity
            FROM rag_chunks, q WHERE {where} AND tsv @@ q.tsq LIMIT :kwcap
        ),
        kw AS (
            -- ranked after the cap: ts_rank_cd reads the whole tsvector; a chunk holding
            -- the query's own words ranks above one found by expansions, and one holding
            -- the common words too above one without (when the own words are the whole
            -- query, as for one word without synonyms, the sum is twice the one rank:
            -- exact in float4, computed once)
            SELECT kind, doc_id, chunk_no, similarity,
                   row_number() OVER (
                       ORDER BY CASE WHEN q.rank = q.own
                                     THEN ts_rank_cd(tsv, q.rank) * CAST(2 AS real)
                                     ELSE ts_rank_cd(tsv, q.rank) + ts_rank_cd(tsv, q.own)
                                END DESC,
                                kind, doc_id, chunk_no) AS r
            FROM matches, q ORDER BY r LIMIT :pool
        ),
        fused AS (
            SELECT kind, doc_id, chunk_no, vr.r AS vector_rank, kw.r AS text_rank,
                   COALESCE(vr.similarity, kw.similarity) AS similarity
            FROM vr FULL OUTER JOIN kw USING (kind, doc_id, chunk_no)
        ),
        scored AS (
            SELECT f.kind, f.doc_id, f.chunk_no, f.vector_rank, f.text_rank,
                   COALESCE(1.0 / ({_RRF_K} + f.vector_rank), 0)
                   + COALESCE({_KEYWORD_WEIGHT} / ({_RRF_K} + f.text_rank), 0)
                   + CASE WHEN f.kind = ANY(CAST(:kinds AS text[])) THEN {_KIND_BONUS} ELSE 0 END
                   AS score,
                   COALESCE(f.similarity, (
                       SELECT 1 - (ch.embedding <=> CAST(:qv AS vector)) FROM rag_chunks ch
                       WHERE ch.cabinet_id = {int(cabinet_id)}
                         AND ch.generation = {int(generation)} AND ch.kind = f.kind
                         AND ch.doc_id = f.doc_id AND ch.chunk_no = f.chunk_no
                   )) AS similarity
            FROM fused f
        ),
        top AS MATERIALIZED (
            -- each candidate's similarity comes from the row its side read anyway (the
            -- vector is inline in it); content, metadata and the tsvector (out of line, in
            -- TOAST) are read only for the k returned
            SELECT * FROM scored
            WHERE text_rank IS NOT NULL OR CAST(:minsim AS float8) IS NULL
                  OR similarity >= CAST(:minsim AS float8)
            ORDER BY score DESC, kind, doc_id, chunk_no
            LIMIT :k
        ),
        terms AS MATERIALIZED (
            SELECT to_tsquery('russian', t.tq) AS tq, t.n
            FROM unnest(CAST(:terms AS text[])) WITH ORDINALITY AS t(tq, n)
        )
        SELECT t.kind, t.doc_id, t.chunk_no, ch.content, ch.metadata, t.score, t.vector_rank,
               t.text_rank, t.similarity,
               ARRAY(SELECT tm.n FROM terms tm WHERE ch.tsv @@ tm.tq ORDER BY tm.n) AS matched,
               EXISTS (SELECT 1 FROM kw) AS keyword_found
        FROM top t
        JOIN rag_chunks ch ON ch.cabinet_id = {int(cabinet_id)}
             AND ch.generation = {int(generation)} AND ch.kind = t.kind
             AND ch.doc_id = t.doc_id AND ch.chunk_no = t.chunk_no
        ORDER BY t.score DESC, t.kind, t.doc_id, t.chunk_no
        """
    )


async def search_chunks(
    conn: AsyncConnection,
    cabinet_id: int,
    *,
    query_text: str,
    query_vector: Vectors,
    k: int,
    candidates: int = 50,
    embedder_id: str | None = None,
    min_similarity: float | None = None,
    options: SearchOptions | None = None,
    keyword_query: KeywordQuery | None = None,
) -> list[SearchHit]:
    """The `k` best chunks of the cabinet's active generation (built by `embedder_id`, if
    given; otherwise whatever built it). Call it in a REPEATABLE READ transaction."""
    options = options or SearchOptions()
    state = (
        await conn.execute(
            _STATE_SQL,
            {
                "c": cabinet_id,
                "e": embedder_id,
                "prefix": ann_index_name(cabinet_id, ""),
                "pf": options.probes_factor,
                "wm": f"{_WORK_MEM_MB}MB",
            },
        )
    ).first()
    if state is None:
        return []
    vector = np.asarray(query_vector, dtype=np.float32)
    # A query with no features (punctuation only, say) has a zero vector: its cosine to
    # anything is undefined (NaN), so the vector side has nothing to say.
    vector_side = bool(np.any(vector))
    ann = state.lists is not None
    keywords = keyword_query or build_keyword_query(query_text)
    terms = keywords.terms()
    sql = _hybrid_sql(cabinet_id, state.gen, len(vector) if ann else None)
    groups = frozenset(range(len(keywords.groups)))
    common = await _common_groups(conn, keywords) if len(groups) > 1 else frozenset()
    required = groups - common if common != groups else groups
    params = {
        "qt": keywords.tsquery(required),
        "qrank": keywords.tsquery(),
        "qown": keywords.own_words_tsquery(),
        "terms": [t.tsquery for t in terms],
        "kinds": list(keywords.kinds),
        "qv": vector,
        "pool": max(k, candidates),
        "vpool": max(k, candidates) if vector_side else 0,
        "kwcap": max(options.keyword_candidates, k, candidates),
        "minsim": min_similarity,
        "k": k,
    }
    rows = (await conn.execute(sql, params)).all()
    if len(required) > 1 and not (rows and rows[0].keyword_found):
        # Every group is required only if the cabinet holds it somewhere: drop the absent
        # ones and ask again. Checked only now: when all groups match a chunk together (the
        # common case) all are present, and a common word's full bitmap is never built.
        present = await _present_groups(conn, cabinet_id, state.gen, keywords)
        if len(present & required) < len(required):
            params["qt"] = keywords.tsquery(present & required)
            params["qrank"] = keywords.tsquery(present)
            rows = (await conn.execute(sql, params)).all()
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
            similarity=float(r.similarity) if vector_side else 0.0,
            matched_terms=tuple(t.label for t in found if t.expanded_from is None),
            expansions=tuple(t.label for t in found if t.expanded_from is not None),
            kind_match=r.kind in keywords.kinds,
        )
        for r in rows
        for found in ([terms[n - 1] for n in r.matched],)
    ]


async def _common_groups(conn: AsyncConnection, keywords: KeywordQuery) -> frozenset[int]:
    """The single-word groups without synonyms of which some form is a common word."""
    freqs = await _lexeme_freqs(conn)
    if not freqs:
        return frozenset()
    common: set[int] = set()
    for n, group in enumerate(keywords.groups):
        if len(group.words) != 1 or group.expansions:
            continue
        forms = (group.words[0], *(group.forms[0] if group.forms else ()))
        if any(freqs.get(stem, 0.0) >= _COMMON_FREQ for stem in stems(forms)):
            common.add(n)
    return frozenset(common)


async def _lexeme_freqs(conn: AsyncConnection) -> dict[str, float]:
    """Share of `rag_chunks` rows holding each of the table's most common lexemes, from its
    statistics; read again after `_COMMON_TTL_S`."""
    key = str(conn.engine.url)
    now = time.monotonic()
    cached = _lexeme_freqs_cache.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    row = (await conn.execute(_LEXEME_FREQS_SQL)).first()
    freqs: dict[str, float] = {}
    if row is not None and row.lexemes:
        # most_common_elem_freqs: one per lexeme, then the minimum, maximum and null share
        freqs = {lexeme: float(f) for lexeme, f in zip(row.lexemes, row.freqs, strict=False)}
    _lexeme_freqs_cache[key] = (now + _COMMON_TTL_S, freqs)
    return freqs


async def _present_groups(
    conn: AsyncConnection, cabinet_id: int, generation: int, keywords: KeywordQuery
) -> frozenset[int]:
    """The groups of `keywords` that some chunk of the generation matches."""
    if not keywords.groups:
        return frozenset()
    rows = await conn.execute(
        _PRESENT_SQL,
        {"c": cabinet_id, "g": generation, "groups": [g.tsquery for g in keywords.groups]},
    )
    return frozenset(r.n - 1 for r in rows)
