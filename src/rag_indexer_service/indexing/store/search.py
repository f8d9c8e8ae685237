"""Hybrid search in one cabinet: cosine distance and full-text rank fused by RRF.

The vector side is exact (`ORDER BY embedding <=> q` over the cabinet's rows, found through
the primary key prefix) unless the cabinet's generation has a valid ANN index (`ann.py`: an
IVFFlat index on `embedding::halfvec(dim)`, partial to that cabinet and generation); then
the `probes_factor` × √lists lists nearest the query (and at least `probe_vectors` vectors)
give the candidates. The keyword side finds matches through the cabinet's own full-text
index where it has one (`ann.py`; else the table-wide one) and ranks at most
`keyword_candidates` of them, so a word that occurs in every chunk of a big cabinet costs a
bounded amount. A word that many chunks of the table hold (`_COMMON_FREQ`: "товар", "заказ",
the reviews' headers) is not required, only ranked by, as in Elasticsearch's common terms
query; when every word of a query is common ("товар", "отзыв товар"), the keyword side ranks
the vector side's candidates holding any of them instead of matching through the index
(whose bitmap of such a word spans the cabinet). Content, metadata and the tsvector (out of
line) are read only for the `k` hits returned.

Each hit says why it was found: the cosine similarity of its vector to the query's (exact,
from the stored vector, also for keyword-only hits), its rank on each side, the query words
that occur in it, and the fused score. `min_similarity` drops hits the keyword side did not
find whose similarity is below it, so "nothing relevant" is an empty list.

A search is one statement, so it reads one snapshot: the generation and the chunks it ranks
come from the same moment, and a search sees the generation before a swap or the one after,
never half of each. The statement names the generation it expects (inlined, as the partial
ANN index requires) and says whether `rag_cabinets.active_generation` still is that
generation; what a search expects (generation, ANN lists) is cached per store for
`_TARGET_TTL_S` and read again when the statement says it is stale. The
session settings a search needs (`ivfflat.probes`, `work_mem`, custom plans) are set on a
pooled connection once, not in every search. With an `embedder_id` it returns nothing unless
the active generation was built by that embedder, so query vectors are only ever compared
with vectors of the same model.
"""

from __future__ import annotations

import math
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

__all__ = ["SearchCache", "SearchHit", "SearchOptions", "ann_probes", "search_chunks"]

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
_TARGET_TTL_S = 30.0
"""How long a cabinet's generation and ANN lists are taken as known. A stale generation
costs two more statements (the target and the search, again); a stale ANN state costs speed,
not results: an index built since is used within this long, a dropped one leaves an exact scan."""
_SETTINGS_KEY = "rag_search_settings"
_ATTEMPTS = 3

_TARGET_SQL = text(
    """
    SELECT c.active_generation AS gen, c.chunk_count AS chunks,
           (SELECT CAST(o.option_value AS int)
            FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid,
                 pg_options_to_table(x.reloptions) o
            WHERE i.indexrelid = to_regclass(:prefix || c.active_generation)
              AND i.indisvalid AND o.option_name = 'lists') AS lists
    FROM rag_cabinets c
    WHERE c.cabinet_id = :c AND (CAST(:e AS text) IS NULL OR c.embedder_id = CAST(:e AS text))
    """
)

# Session-level (the search runs in autocommit): custom plans, because how common the
# query's words are decides the plan and a generic plan cannot know; work_mem, so a common
# word does not make the full-text bitmap lossy (a lossy bitmap rechecks, and so detoasts,
# every row of the pages it covers); the probes of the cabinet's ANN index.
_SETTINGS_SQL = text(
    """
    SELECT set_config('ivfflat.probes', :probes, false),
           set_config('work_mem', :wm, false),
           set_config('plan_cache_mode', 'force_custom_plan', false)
    """
)


@dataclass(frozen=True, slots=True)
class _Target:
    generation: int
    lists: int | None
    """Lists of the generation's valid ANN index; None: no index, an exact scan."""
    chunks: int


class SearchCache:
    """What a store's searches look up before their statement, kept for a while: each
    cabinet's target (generation, ANN lists) and the table's common lexemes."""

    def __init__(self) -> None:
        self._targets: dict[tuple[int, str | None], tuple[float, _Target]] = {}
        self._lexemes: tuple[float, dict[str, float]] | None = None

    async def target(
        self, conn: AsyncConnection, cabinet_id: int, embedder_id: str | None, *, fresh: bool
    ) -> _Target | None:
        key = (cabinet_id, embedder_id)
        now = time.monotonic()
        cached = self._targets.get(key)
        if cached is not None and cached[0] > now and not fresh:
            return cached[1]
        params = {"c": cabinet_id, "e": embedder_id, "prefix": ann_index_name(cabinet_id, "")}
        row = (await conn.execute(_TARGET_SQL, params)).first()
        if row is None:  # not indexed (by that embedder): it may be any moment now
            self._targets.pop(key, None)
            return None
        if len(self._targets) > 10_000:
            self._targets.clear()
        target = _Target(row.gen, row.lists, row.chunks or 0)
        self._targets[key] = (now + _TARGET_TTL_S, target)
        return target

    async def lexeme_freqs(self, conn: AsyncConnection) -> dict[str, float]:
        """Share of `rag_chunks` rows holding each of the table's most common lexemes, from
        its statistics; read again after `_COMMON_TTL_S`."""
        now = time.monotonic()
        if self._lexemes is not None and self._lexemes[0] > now:
            return self._lexemes[1]
        row = (await conn.execute(_LEXEME_FREQS_SQL)).first()
        freqs: dict[str, float] = {}
        if row is not None and row.lexemes:
            # most_common_elem_freqs: one per lexeme, then the minimum, maximum and null share
            freqs = {lexeme: float(f) for lexeme, f in zip(row.lexemes, row.freqs, strict=False)}
        self._lexemes = (now + _COMMON_TTL_S, freqs)
        return freqs


async def _apply_settings(conn: AsyncConnection, probes: int | None) -> None:
    """Set the session's search settings unless they are set; `probes` None: any will do
    (the search has no ANN index to probe)."""
    applied = conn.info.get(_SETTINGS_KEY)
    if applied is not None and probes in (None, applied):
        return
    probes = probes or 1
    await conn.execute(_SETTINGS_SQL, {"probes": str(probes), "wm": f"{_WORK_MEM_MB}MB"})
    conn.info[_SETTINGS_KEY] = probes


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
    probes_factor: float = 2.0
    """A search reads this times √lists of the ANN index's lists (`ivfflat.probes`; pgvector
    suggests √lists to start): recall against speed."""
    probe_vectors: int = 10_000
    """...and lists holding at least this many vectors: a small cabinet's lists are long, and
    few of them lose recall. Recall@10 by distance, benchmarks/search.py's queries: 20k
    chunks, 40 lists: 14 probes 0.937 (100 queries), 20 probes (10k vectors) 0.988 (200);
    250k chunks, 1,002 lists, 200 queries: 40 probes (10k vectors) 0.928, 64 (2√lists)
    0.959 and 0.969 (two cabinets), 96 (3√lists) 0.979."""
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


def _hybrid_sql(cabinet_id: int, generation: int, ann_dim: int | None, *, common_only: bool) -> Any:
    # Cabinet and generation are inlined integers: the planner can match the ANN index's
    # partial predicate only against constants, whatever it does with prepared statements.
    where = f"cabinet_id = {int(cabinet_id)} AND generation = {int(generation)}"
    similarity = "1 - (embedding <=> CAST(:qv AS vector))"
    if ann_dim is None:
        distance = "embedding <=> CAST(:qv AS vector)"
        # Here the vector side sorts the cabinet: carrying each row's vector through that
        # sort for its similarity would cost more than reading the ≤ `vpool` rows again.
        vector_similarity = "CAST(NULL AS float8)"
        rerank = "distance"
    else:
        half = f"halfvec({int(ann_dim)})"
        distance = f"CAST(embedding AS {half}) <=> CAST(CAST(:qv AS vector) AS {half})"
        vector_similarity = similarity
        # The index finds the candidates by halfvec distance; the full vector, read for the
        # similarity anyway, orders them, so a hit's vector rank agrees with its similarity.
        rerank = "similarity DESC"
    matched_from, matched_where = "rag_chunks, q", f"{where} AND tsv @@ q.tsq"
    if common_only:
        # Every word of the query is in most chunks: its full-text bitmap would cost what
        # the cabinet holds (~30 ms at 250k chunks) to rank chunks it cannot tell apart.
        # The keyword side ranks the vector side's candidates that hold any of those words
        # instead (those with all of them first: `kw`), so no group needs to be present.
        matched_from = "vr JOIN rag_chunks ch USING (kind, doc_id, chunk_no), q"
        matched_where = (
            f"ch.cabinet_id = {int(cabinet_id)} AND ch.generation = {int(generation)} "
            "AND tsv @@ q.own"
        )
    return text(
        f"""
        WITH q AS (
            SELECT to_tsquery('russian', :qt) AS tsq, to_tsquery('russian', :qrank) AS rank,
                   to_tsquery('russian', :qown) AS own
        ),
        vr AS (
            SELECT kind, doc_id, chunk_no, similarity,
                   row_number() OVER (ORDER BY {rerank}, kind, doc_id, chunk_no) AS r
            FROM (SELECT kind, doc_id, chunk_no, {distance} AS distance,
                         {vector_similarity} AS similarity
                  FROM rag_chunks WHERE {where}
                  ORDER BY {distance} LIMIT :vpool) AS nearest
        ),
        matches AS MATERIALIZED (
            -- `|| ''` detoasts the tsvector once, into the materialized rows (the same value:
            -- byte for byte); else each rank below fetches it from TOAST again
            SELECT kind, doc_id, chunk_no, tsv || CAST('' AS tsvector) AS tsv,
                   {similarity} AS similarity
            FROM {matched_from} WHERE {matched_where} LIMIT :kwcap
        ),
        kw AS (
            -- ranked after the cap: cover density over the whole query (common words too:
            -- a chunk holding them ranks above one without), plus the frequency rank of
            -- the query's own words, so a chunk holding them ranks above one found by
            -- expansions. ts_rank_cd zeroes 32 kB per query node for every row, so only
            -- one of them (benchmarks/relevance.py: the same nDCG as two)
            SELECT kind, doc_id, chunk_no, similarity,
                   row_number() OVER (
                       ORDER BY ts_rank_cd(tsv, q.rank) + ts_rank(tsv, q.own) DESC,
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
        ),
        hits AS (
            SELECT t.kind, t.doc_id, t.chunk_no, ch.content, ch.metadata, t.score,
                   t.vector_rank, t.text_rank, t.similarity,
                   ARRAY(SELECT tm.n FROM terms tm WHERE ch.tsv @@ tm.tq ORDER BY tm.n)
                   AS matched
            FROM top t
            JOIN rag_chunks ch ON ch.cabinet_id = {int(cabinet_id)}
                 AND ch.generation = {int(generation)} AND ch.kind = t.kind
                 AND ch.doc_id = t.doc_id AND ch.chunk_no = t.chunk_no
        )
        -- one row at least: whether the generation searched is still the active one (of
        -- the embedder asked for) in this statement's snapshot, and the hits if any
        SELECT st.current, st.keyword_found, t.*
        FROM (SELECT EXISTS (SELECT 1 FROM rag_cabinets c
                             WHERE c.cabinet_id = {int(cabinet_id)}
                               AND c.active_generation = {int(generation)}
                               AND (CAST(:e AS text) IS NULL
                                    OR c.embedder_id = CAST(:e AS text))) AS current,
                     EXISTS (SELECT 1 FROM kw) AS keyword_found) st
        LEFT JOIN hits t ON true
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
    cache: SearchCache,
) -> list[SearchHit]:
    """The `k` best chunks of the cabinet's active generation (built by `embedder_id`, if
    given; otherwise whatever built it). Call it on an AUTOCOMMIT connection: it sets
    session settings, which a rolled-back transaction would undo behind its back."""
    options = options or SearchOptions()
    vector = np.asarray(query_vector, dtype=np.float32)
    # A query with no features (punctuation only, say) has a zero vector: its cosine to
    # anything is undefined (NaN), so the vector side has nothing to say.
    vector_side = bool(np.any(vector))
    keywords = keyword_query or build_keyword_query(query_text)
    terms = keywords.terms()
    groups = frozenset(range(len(keywords.groups)))
    common = await _common_groups(conn, cache, keywords)
    common_only = bool(groups) and common == groups and vector_side
    required = groups - common if common != groups else groups
    params = {
        "e": embedder_id,
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
    for attempt in range(_ATTEMPTS):
        # cached, then read again: the statement found its generation swapped out
        target = await cache.target(conn, cabinet_id, embedder_id, fresh=attempt > 0)
        if target is None:
            return []
        probes = None if target.lists is None else ann_probes(target.lists, target.chunks, options)
        await _apply_settings(conn, probes)
        sql = _hybrid_sql(
            cabinet_id,
            target.generation,
            len(vector) if probes else None,
            common_only=common_only,
        )
        rows = (await conn.execute(sql, params)).all()
        if rows[0].current:
            break
    else:
        return []  # swapped out at every attempt: never seen, and nothing consistent to say
    if len(required) > 1 and not rows[0].keyword_found and not common_only:
        # Every group is required only if the cabinet holds it somewhere: drop the absent
        # ones and ask again. Checked only now: when all groups match a chunk together (the
        # common case) all are present, and a common word's full bitmap is never built.
        present = await _present_groups(conn, cabinet_id, target.generation, keywords)
        if len(present & required) < len(required):
            params["qt"] = keywords.tsquery(present & required)
            params["qrank"] = keywords.tsquery(present)
            again = (await conn.execute(sql, params)).all()
            if again[0].current:  # else swapped just now: the first answer, before the swap
                rows = again
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
        if r.kind is not None
        for found in ([terms[n - 1] for n in r.matched],)
    ]


def ann_probes(lists: int, chunks: int, options: SearchOptions) -> int:
    """How many of an ANN index's `lists` a search of `chunks` chunks reads."""
    per_list = max(1.0, chunks / lists)
    wanted = max(options.probes_factor * math.sqrt(lists), options.probe_vectors / per_list)
    return max(1, min(lists, math.ceil(wanted)))


async def _common_groups(
    conn: AsyncConnection, cache: SearchCache, keywords: KeywordQuery
) -> frozenset[int]:
    """The single-word groups without synonyms of which some form is a common word."""
    freqs = await cache.lexeme_freqs(conn)
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
