"""The statements of a hybrid search (`search.py` runs them): the vector side, the keyword
side, the read of the hits shown, and which keyword groups a generation holds at all.

Cabinet, generation and limits are inlined integers: the planner can match a partial index's
predicate only against constants, and with them inlined no plan depends on a parameter, so
a generic plan serves every execution (the search session forces them, `search.py`: the
keyword side's words reach the planner only through its CTE `q`, whose value no estimate
sees either way, yet left to choose Postgres planned it anew at every execution). The
sides' and the hits' statements are run on the driver's connection (`$n` parameters), the
rare others through SQLAlchemy.
"""

from __future__ import annotations

import functools

from sqlalchemy import TextClause, text

__all__ = ["hits_sql", "keyword_sql", "present_sql", "rank_sql", "vector_sql"]


@functools.lru_cache(maxsize=1024)
def present_sql(cabinet_id: int, generation: int) -> TextClause:
    """Which of the keyword groups (`:groups`, tsqueries) some chunk of the generation holds:
    their 1-based numbers (through the cabinet's own full-text index where it has one)."""
    return text(
        f"""
        SELECT t.n FROM unnest(CAST(:groups AS text[])) WITH ORDINALITY AS t(tq, n)
        WHERE EXISTS (SELECT 1 FROM rag_chunks
                      WHERE cabinet_id = {int(cabinet_id)} AND generation = {int(generation)}
                        AND tsv @@ to_tsquery('russian', t.tq))
        """
    )


@functools.lru_cache(maxsize=1024)
def vector_sql(cabinet_id: int, generation: int, ann_dim: int | None, pool: int) -> str:
    """The cabinet's `pool` chunks nearest the query vector, ranked by the full vector's
    cosine similarity: found through the generation's ANN index (by halfvec distance) when
    `ann_dim` is given, else by an exact scan through the primary key prefix."""
    # Cabinet and generation are inlined integers: the planner can match the ANN index's
    # partial predicate only against constants, whatever it does with prepared statements.
    where = f"cabinet_id = {int(cabinet_id)} AND generation = {int(generation)}"
    order = "distance"
    if ann_dim is not None:
        # The index finds the candidates by halfvec distance; the full vector, read for the
        # similarity anyway, orders them, so a hit's vector rank agrees with its similarity.
        half = f"halfvec({int(ann_dim)})"
        order = f"CAST(embedding AS {half}) <=> CAST(CAST($1 AS vector) AS {half})"
    # ($1: the query vector; run on the driver's connection, as the keyword side is)
    return f"""
        SELECT kind, doc_id, chunk_no, 1 - distance AS similarity,
               row_number() OVER (ORDER BY distance, kind, doc_id, chunk_no) AS r
        FROM (SELECT kind, doc_id, chunk_no, embedding <=> CAST($1 AS vector) AS distance
              FROM rag_chunks WHERE {where} ORDER BY {order} LIMIT {int(pool)}) AS nearest
        ORDER BY r
        """


def rank_sql(template: str, slots: str, alternatives: str) -> str:
    """CTEs that end in `ranked_by(rank)`: the tsquery of `keyword_query.Prunable`'s
    parameters (`template`, `slots`, `alternatives`) less the alternatives that change no
    rank of the rows of `matches(tsv)`: those no row holds, unless they hold a word some
    row holds that the rest of the query does not. Every row ranks the same by it as by
    the whole query (a cover needs an alternative true in it; each word's positions are
    those the query holds) at a fraction of the cost, for ts_rank_cd zeroes 32 kB per
    query node for every row."""
    return f"""alternatives AS MATERIALIZED (
    SELECT a.slot, a.n, a.alternative, to_tsquery('russian', a.alternative) AS tsq,
           tsvector_to_array(to_tsvector('russian', a.alternative)) AS lexemes
    FROM unnest(CAST({slots} AS int[]), CAST({alternatives} AS text[])) WITH ORDINALITY
         AS a(slot, alternative, n)
),
found AS MATERIALIZED (
    SELECT a.*, EXISTS (SELECT 1 FROM matches m WHERE m.tsv @@ a.tsq) AS matched
    FROM alternatives a
),
kept AS (
    SELECT coalesce(array_agg(lexeme), CAST('{{}}' AS text[])) AS lexemes
    FROM (SELECT unnest(tsvector_to_array(
                     to_tsvector('russian', replace({template}, '%s', ' '))))
          UNION ALL
          SELECT unnest(lexemes) FROM found WHERE matched) AS l(lexeme)
),
loose AS MATERIALIZED (
    -- the words of an alternative no row holds that the query would lose with it
    SELECT f.n, CAST(quote_literal(l.lexeme) AS tsquery) AS tsq
    FROM found f, unnest(f.lexemes) AS l(lexeme), kept k
    WHERE NOT f.matched AND l.lexeme <> ALL (k.lexemes)
),
ranked_by AS MATERIALIZED (
    SELECT to_tsquery('russian', format({template}, VARIADIC coalesce(
               array_agg(coalesce(s.alternatives, '') ORDER BY s.slot),
               CAST('{{}}' AS text[])))) AS rank
    FROM (SELECT f.slot, string_agg(' | ' || f.alternative, '' ORDER BY f.n) FILTER (
                 WHERE f.matched OR f.n IN (
                     SELECT l.n FROM loose l
                     WHERE EXISTS (SELECT 1 FROM matches m WHERE m.tsv @@ l.tsq)))
                 AS alternatives
          FROM found f GROUP BY f.slot) AS s
)"""


@functools.lru_cache(maxsize=1024)
def keyword_sql(cabinet_id: int, generation: int, *, common_only: bool, cap: int, pool: int) -> str:
    """The cabinet's `pool` best keyword matches of at most `cap` matches, ranked; with
    `common_only`, the matches are the vector side's candidates ($7-$9) holding any
    of the query's own words."""
    where = f"cabinet_id = {int(cabinet_id)} AND generation = {int(generation)}"
    matched = f"FROM rag_chunks, q WHERE {where} AND tsv @@ q.tsq"
    if common_only:
        # Every word of the query is in most chunks: its full-text bitmap would cost what
        # the cabinet holds (~30 ms at 250k chunks) to rank chunks it cannot tell apart.
        # The keyword side ranks the vector side's candidates that hold any of those words
        # instead (those with all of them first), so no group needs to be present.
        # (OFFSET 0: each candidate is looked up by its key; joined, the planner would
        # rather read the word's whole bitmap, not knowing how common the word is)
        matched = (
            "FROM unnest(CAST($7 AS text[]), CAST($8 AS text[]), CAST($9 AS int[]))"
            " AS v(kind, doc_id, chunk_no), LATERAL (SELECT tsv, embedding FROM rag_chunks ch"
            f" WHERE ch.cabinet_id = {int(cabinet_id)} AND ch.generation = {int(generation)}"
            " AND ch.kind = v.kind AND ch.doc_id = v.doc_id"
            " AND ch.chunk_no = v.chunk_no OFFSET 0) AS ch, q WHERE ch.tsv @@ q.own"
        )
    # $1: the required groups; $2, $5, $6: the whole query as a template, its slots and
    # their alternatives (`keyword_query.Prunable`); $3: its own words; $4: the query
    # vector; $7-$9: the vector side's candidates. Run on the driver's connection: its 50
    # rows cost a fraction of what SQLAlchemy's rows do (~1 ms of Python a search at 8 clients)
    return f"""
        WITH q AS (
            SELECT to_tsquery('russian', $1) AS tsq, to_tsquery('russian', $3) AS own
        ),
        matches AS MATERIALIZED (
            -- `|| ''` detoasts the tsvector once, into the materialized rows (the same value:
            -- byte for byte); else each rank below fetches it from TOAST again
            SELECT kind, doc_id, chunk_no, tsv || CAST('' AS tsvector) AS tsv,
                   1 - (embedding <=> CAST($4 AS vector)) AS similarity
            {matched}
            LIMIT {int(cap)}
        ),
        {rank_sql("$2", "$5", "$6")}
        -- ranked after the cap: cover density over the whole query (common words too: a
        -- chunk holding them ranks above one without), plus the frequency rank of the
        -- query's own words, so a chunk holding them ranks above one found by expansions.
        -- (benchmarks/relevance.py: one ts_rank_cd ranks as well as two)
        SELECT kind, doc_id, chunk_no, similarity,
               row_number() OVER (
                   ORDER BY ts_rank_cd(tsv, rq.rank) + ts_rank(tsv, q.own) DESC,
                            kind, doc_id, chunk_no) AS r
        FROM matches, q, ranked_by rq ORDER BY r LIMIT {int(pool)}
        """


@functools.lru_cache(maxsize=1024)
def hits_sql(cabinet_id: int, generation: int, k: int) -> str:
    """The first `k` of the fused candidates ($1-$3: kinds, doc ids, chunk numbers, best
    first) that the generation holds, with what is shown of them, which of the query's
    terms ($4) each holds, and whether the generation is still the active one (of the
    embedder $5, if given): one row at least. Run on the driver's connection, as the
    sides are (SQLAlchemy's execute and rows cost ~0.4 ms more)."""
    cabinet = f"cabinet_id = {int(cabinet_id)}"
    return f"""
        WITH terms AS MATERIALIZED (
            SELECT to_tsquery('russian', t.tq) AS tq, t.n
            FROM unnest(CAST($4 AS text[])) WITH ORDINALITY AS t(tq, n)
        ),
        found AS MATERIALIZED (
            -- content, metadata and the tsvector (out of line, in TOAST) are read only for
            -- the k returned
            SELECT t.n, ch.kind, ch.doc_id, ch.chunk_no, ch.content, ch.metadata, ch.tsv
            FROM unnest(CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS int[]))
                 WITH ORDINALITY AS t(kind, doc_id, chunk_no, n)
            JOIN rag_chunks ch ON ch.{cabinet} AND ch.generation = {int(generation)}
                 AND ch.kind = t.kind AND ch.doc_id = t.doc_id AND ch.chunk_no = t.chunk_no
            ORDER BY t.n LIMIT {int(k)}
        )
        SELECT st.current, f.kind, f.doc_id, f.chunk_no, f.content, f.metadata,
               ARRAY(SELECT tm.n FROM terms tm WHERE f.tsv @@ tm.tq ORDER BY tm.n) AS matched
        FROM (SELECT EXISTS (SELECT 1 FROM rag_cabinets c
                             WHERE c.{cabinet} AND c.active_generation = {int(generation)}
                               AND (CAST($5 AS text) IS NULL
                                    OR c.embedder_id = CAST($5 AS text))) AS current) st
        LEFT JOIN found f ON true
        ORDER BY f.n
        """
