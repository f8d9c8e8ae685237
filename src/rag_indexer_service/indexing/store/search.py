"""Hybrid search in one cabinet: cosine distance and full-text rank fused by RRF.

The vector side is exact (`ORDER BY embedding <=> q` over the cabinet's rows, found through
the primary key prefix) unless the cabinet's generation has a valid ANN index (`ann.py`: an
IVFFlat index on `embedding::halfvec(dim)`, partial to that cabinet and generation); then
the `probes_factor` × √lists lists nearest the query (and at least `probe_vectors` vectors)
give the candidates. The keyword side finds matches through the cabinet's own full-text
index where it has one (`ann.py`; else the table-wide one) and ranks at most
`keyword_candidates` of them, so a word that occurs in every chunk of a big cabinet costs a
bounded amount; it ranks them by the query less the synonyms and inflected forms none of
them holds (`search_sql.rank_sql`: the same ranks, for less). A word that many chunks of the
table hold (`_COMMON_FREQ`: "товар", "заказ", the reviews' headers) is not required, only
ranked by, as in Elasticsearch's common terms query; when every word of a query is common
("товар", "отзыв товар"), the keyword side ranks the vector side's candidates holding any of
them instead of matching through the index (whose bitmap of such a word spans the cabinet).
Content, metadata and the tsvector (out of line) are read only for the `k` hits returned.

Each hit says why it was found: the cosine similarity of its vector to the query's (exact,
from the stored vector, also for keyword-only hits), its rank on each side, the query words
that occur in it, and the fused score. `min_similarity` drops hits the keyword side did not
find whose similarity is below it, so "nothing relevant" is an empty list.

The two sides are two statements, run at once on two pooled connections (the 2 cores a
search has to itself when the service is idle: a 20k-chunk search's sides take ~6 and ~4 ms);
the fusion is done here, and a third statement reads what is shown of the `k` best. Every
statement names the generation it expects (inlined, as the partial ANN index requires), so
the chunks a search ranks all belong to one generation: it sees the generation before a swap
or the one after, never half of each. The last statement says whether
`rag_cabinets.active_generation` still is that generation (a generation once replaced is
never active again, so the earlier statements read it while it was); what a search expects
(generation, ANN lists) is cached per store for `_TARGET_TTL_S` and read again when the last
statement says it is stale. A chunk that an indexing run replaced between the statements
gives its place to the next candidate. The session settings a search needs
(`ivfflat.probes`, `work_mem`) are set on a pooled connection once, not in
every search. With an `embedder_id` it returns nothing unless the active generation was
built by that embedder, so query vectors are only ever compared with vectors of the same
model.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rag_indexer_service.indexing.embedders import Vectors
from rag_indexer_service.indexing.store.ann import ann_index_name
from rag_indexer_service.indexing.store.keyword_query import KeywordQuery, build_keyword_query
from rag_indexer_service.indexing.store.rows import driver_connection
from rag_indexer_service.indexing.store.search_sql import (
    hits_sql,
    keyword_sql,
    present_sql,
    vector_sql,
)
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

# Session-level (the search runs in autocommit): work_mem, so a common word does not make
# the full-text bitmap lossy (a lossy bitmap rechecks, and so detoasts, every row of the pages
# it covers); the probes of the cabinet's ANN index; generic plans, which the statements are
# written for (`search_sql.py`): left to choose, Postgres plans the keyword statement anew at
# every execution (0.6 ms against 0.16 ms a bind at 250k chunks, the same plan and execution).
_SETTINGS_SQL = text(
    """
    SELECT set_config('ivfflat.probes', :probes, false), set_config('work_mem', :wm, false),
           set_config('plan_cache_mode', 'force_generic_plan', false)
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
    (the connection probes no ANN index)."""
    applied: int | None = conn.info.get(_SETTINGS_KEY)
    if applied is not None and probes in (None, applied):
        return
    probes = probes or applied or 1
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


@dataclass(frozen=True, slots=True)
class SearchOptions:
    ann_min_chunks: int = 10_000
    """Cabinets (generations) with at least this many chunks get an ANN index."""
    probes_factor: float = 2.5
    """A search reads this times √lists of the ANN index's lists (`ivfflat.probes`; pgvector
    suggests √lists to start): recall against speed. Recall@10 of 200 queries, 250k chunks,
    2,000 lists (`ann.py`): 90 probes (2√lists) 0.947, 100 0.951, 112 (2.5√lists) 0.957;
    1,002 lists: 64 probes (2√lists) 0.941 (0.953 on another query set), 80 0.966 (that
    other set)."""
    probe_vectors: int = 7_000
    """...and lists holding at least this many vectors: a small cabinet's lists are long, and
    few of them lose recall. Recall@10 by distance, benchmarks/search.py's queries (200, and
    200 more of another seed): 20k chunks, 160 lists (`ann.py`): 48 probes (6k vectors)
    0.972 / 0.960–0.964, 56 (7k) 0.978 / 0.970–0.975, 80 (10k) 0.993."""
    keyword_candidates: int = 200
    """At most this many keyword matches are ranked (in storage order past that). Hybrid
    nDCG@10 (benchmarks/relevance.py, 10 cabinets of 300 products) is the same at 200 as at
    300 on every query set (150: -0.015 on one); the keyword statement costs ~25 % less
    (20k chunks p50 4.3-5.0 -> 3.2-3.3 ms, 250k 8.8-9.9 -> 7.2-7.3 ms)."""
    searches_at_once: int = 5
    """Searches under way at once, the others wait their turn: each holds two connections
    of the search pool, which must hold twice this many (`db.engine`), so none waits for
    its second connection while holding its first."""


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


@dataclass(slots=True)
class _Candidate:
    similarity: float
    vector_rank: int | None = None
    text_rank: int | None = None
    score: float = 0.0


def _fuse(
    vector: Sequence[Any],
    keyword: Sequence[Any],
    kinds: tuple[str, ...],
    min_similarity: float | None,
) -> list[tuple[tuple[str, str, int], _Candidate]]:
    """Both sides' candidates by weighted reciprocal-rank fusion, best first; those only
    the vector side found below `min_similarity` dropped."""
    fused: dict[tuple[str, str, int], _Candidate] = {}
    for kind, doc_id, chunk_no, similarity, rank in vector:
        fused[(kind, doc_id, chunk_no)] = _Candidate(similarity, vector_rank=rank)
    for kind, doc_id, chunk_no, similarity, rank in keyword:
        found = fused.get((kind, doc_id, chunk_no))
        if found is None:
            found = fused[(kind, doc_id, chunk_no)] = _Candidate(similarity)
        found.text_rank = rank
    for (kind, _, _), c in fused.items():
        c.score = (
            (1.0 / (_RRF_K + c.vector_rank) if c.vector_rank is not None else 0.0)
            + (_KEYWORD_WEIGHT / (_RRF_K + c.text_rank) if c.text_rank is not None else 0.0)
            + (_KIND_BONUS if kind in kinds else 0.0)
        )
    kept = [
        item
        for item in fused.items()
        if item[1].text_rank is not None
        or min_similarity is None
        or item[1].similarity >= min_similarity
    ]
    return sorted(kept, key=lambda item: (-item[1].score, item[0]))


@dataclass(frozen=True, slots=True)
class _Query:
    """What one search asks of a cabinet, whichever generation it finds there."""

    keywords: KeywordQuery
    vector: np.ndarray[Any, np.dtype[np.float32]]
    k: int
    pool: int
    cap: int
    embedder_id: str | None
    min_similarity: float | None
    at_once: bool = True
    """Run the two sides at once; else one after the other (`search_chunks`)."""
    common: frozenset[int] = frozenset()
    """The keyword groups that are common words (`_common_groups`)."""
    vector_side: bool = dataclasses.field(init=False)
    """False: the query has no features (punctuation only, say), so a zero vector, whose
    cosine to anything is undefined (NaN): the vector side has nothing to say."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "vector_side", bool(np.any(self.vector)))

    @property
    def common_only(self) -> bool:
        groups = len(self.keywords.groups)
        return bool(groups) and len(self.common) == groups and self.vector_side

    @property
    def required(self) -> frozenset[int]:
        groups = frozenset(range(len(self.keywords.groups)))
        return groups - self.common if self.common != groups else groups

    @property
    def independent_sides(self) -> bool:
        """Both sides run, and neither needs the other's result: each on a connection of
        its own (with the plan settings it needs), at once if `at_once`."""
        return self.vector_side and bool(self.keywords.groups) and not self.common_only


async def search_chunks(
    engine: AsyncEngine,
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
    at_once: bool = True,
) -> list[SearchHit]:
    """The `k` best chunks of the cabinet's active generation (built by `embedder_id`, if
    given; otherwise whatever built it). `engine` must be in AUTOCOMMIT: a search sets
    session settings, which a rolled-back transaction would undo behind its back.
    `at_once`: run the two sides at once (the caller has cores to spare); else one after
    the other, which costs less in all when other searches keep the cores busy anyway."""
    options = options or SearchOptions()
    pool = max(k, candidates)
    query = _Query(
        keywords=keyword_query or build_keyword_query(query_text),
        vector=np.asarray(query_vector, dtype=np.float32),
        k=k,
        pool=pool,
        cap=max(options.keyword_candidates, pool),
        embedder_id=embedder_id,
        min_similarity=min_similarity,
        at_once=at_once,
    )
    try:
        return await _search(engine, cabinet_id, query, options, cache)
    except _ConnectionLost:
        # The search pool does not ping a connection at checkout (two round trips of a 10 ms
        # search): one that died since its last search (Postgres restarted) fails its first
        # statement instead, and is discarded. Once more, on new ones.
        pass
    try:
        return await _search(engine, cabinet_id, query, options, cache)
    except _ConnectionLost as lost:
        raise lost.error from None


class _ConnectionLost(Exception):
    """A connection of the search died under it (its connections are invalidated)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


_DRIVER_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.InterfaceError,
    # a statement sent while the driver still handles the terminated backend's last message:
    # "cannot switch to state 12; another operation (2) is in progress"
    asyncpg.InternalClientError,
    OSError,
)


async def _search(
    engine: AsyncEngine, cabinet_id: int, query: _Query, options: SearchOptions, cache: SearchCache
) -> list[SearchHit]:
    async with contextlib.AsyncExitStack() as stack:
        conn = other = await stack.enter_async_context(engine.connect())
        try:
            common = await _common_groups(conn, cache, query.keywords)
            query = dataclasses.replace(query, common=common)
            if query.independent_sides:
                other = await stack.enter_async_context(engine.connect())
            for attempt in range(_ATTEMPTS):
                # cached, then read again: the last statement found its generation swapped out
                fresh = attempt > 0
                target = await cache.target(conn, cabinet_id, query.embedder_id, fresh=fresh)
                if target is None:
                    return []
                hits = await _search_generation(conn, other, cabinet_id, target, query, options)
                if hits is not None:
                    return hits
        except (DBAPIError, *_DRIVER_CONNECTION_ERRORS) as exc:
            # SQLAlchemy invalidates a connection that failed under it; the sides' statements
            # run on the driver's connection, under SQLAlchemy's back
            if isinstance(exc, DBAPIError) and not exc.connection_invalidated:
                raise
            for used in {conn, other}:
                await used.invalidate()
            raise _ConnectionLost(exc) from exc
    return []  # swapped out at every attempt: never seen, and nothing consistent to say


async def _search_generation(
    conn: AsyncConnection,
    other: AsyncConnection,
    cabinet_id: int,
    target: _Target,
    query: _Query,
    options: SearchOptions,
) -> list[SearchHit] | None:
    """The hits in the target generation; None if it is no longer the active one."""
    gen = target.generation
    probes = None if target.lists is None else ann_probes(target.lists, target.chunks, options)
    await _apply_settings(conn, probes)
    keywords = query.keywords
    required, ranked_by = keywords.tsquery(query.required), keywords.prunable()
    among: list[list[Any]] = []

    async def nearest() -> Sequence[Any]:
        if not query.vector_side:
            return []
        sql = vector_sql(cabinet_id, gen, len(query.vector) if probes else None, query.pool)
        rows: Sequence[Any] = await (await driver_connection(conn)).fetch(sql, query.vector)
        return rows

    async def matches() -> Sequence[Any]:
        if not keywords.groups:
            return []
        await _apply_settings(other, probes if other is conn else None)
        sql = keyword_sql(
            cabinet_id, gen, common_only=query.common_only, cap=query.cap, pool=query.pool
        )
        driver = await driver_connection(other)
        rows: Sequence[Any] = await driver.fetch(
            sql,
            required,
            ranked_by.template,
            keywords.own_words_tsquery(),
            query.vector,
            ranked_by.slots,
            ranked_by.alternatives,
            *among,
        )
        return rows

    if query.common_only:
        by_vector = await nearest()
        among.extend([r[n] for r in by_vector] for n in range(3))  # kinds, doc ids, chunk nos
        by_keyword = await matches()
    elif query.at_once:
        by_vector, by_keyword = await _both(nearest(), matches())
    else:
        by_vector, by_keyword = await nearest(), await matches()
    if len(query.required) > 1 and not by_keyword and not query.common_only:
        # Every group is required only if the cabinet holds it somewhere: drop the absent
        # ones and ask again. Checked only now: when all groups match a chunk together (the
        # common case) all are present, and a common word's full bitmap is never built.
        present = await _present_groups(other, cabinet_id, gen, keywords)
        if len(present & query.required) < len(query.required):
            required = keywords.tsquery(present & query.required)
            ranked_by = keywords.prunable(present)
            by_keyword = await matches()
    # twice k: a chunk replaced since its side read it leaves its place to the next one
    shortlist = _fuse(by_vector, by_keyword, keywords.kinds, query.min_similarity)[: 2 * query.k]
    terms = keywords.terms()
    rows = await (await driver_connection(conn)).fetch(
        hits_sql(cabinet_id, gen, query.k),
        [key[0] for key, _ in shortlist],
        [key[1] for key, _ in shortlist],
        [key[2] for key, _ in shortlist],
        [t.tsquery for t in terms],
        query.embedder_id,
    )
    if not rows[0]["current"]:
        return None
    ranked = dict(shortlist)
    return [
        SearchHit(
            kind=kind,
            doc_id=doc_id,
            chunk_no=chunk_no,
            content=r["content"],
            metadata=r["metadata"],
            score=c.score,
            vector_rank=c.vector_rank,
            text_rank=c.text_rank,
            similarity=float(c.similarity) if query.vector_side else 0.0,
            matched_terms=tuple(t.label for t in found if t.expanded_from is None),
            expansions=tuple(t.label for t in found if t.expanded_from is not None),
            kind_match=kind in keywords.kinds,
        )
        for r in rows
        for kind, doc_id, chunk_no in ((r["kind"], r["doc_id"], r["chunk_no"]),)
        if kind is not None
        for c in (ranked[(kind, doc_id, chunk_no)],)
        for found in ([terms[n - 1] for n in r["matched"]],)
    ]


async def _both(
    first: Awaitable[Sequence[Any]], second: Awaitable[Sequence[Any]]
) -> tuple[Sequence[Any], Sequence[Any]]:
    """Both results; if either failed, its error once both are done (neither connection is
    left with a statement under way)."""
    done: tuple[Sequence[Any] | BaseException, Sequence[Any] | BaseException]
    done = await asyncio.gather(first, second, return_exceptions=True)
    a, b = done
    if isinstance(a, BaseException):
        raise a
    if isinstance(b, BaseException):
        raise b
    return a, b


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
        present_sql(cabinet_id, generation), {"groups": [g.tsquery for g in keywords.groups]}
    )
    return frozenset(r.n - 1 for r in rows)
