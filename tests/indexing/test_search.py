"""Hybrid search: the ANN path against exact search, isolation between cabinets, an embedder
(dimension) change with ANN indexes, the explained components of a hit and `min_similarity`.

The ANN threshold is set low through the settings so that small test cabinets get their
IVFFlat index; correctness, not speed, is what is tested here (speed: benchmarks/search.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import numpy as np
import pytest
from sqlalchemy import text

from rag_indexer_service.config import Settings, load_settings
from rag_indexer_service.db.engine import asyncpg_dsn
from rag_indexer_service.db.locks import try_advisory_lock
from rag_indexer_service.errors import EmbedderMismatch
from rag_indexer_service.indexing.indexer import IndexOptions, RAGIndexer
from rag_indexer_service.indexing.openai_embedder import OpenAIEmbedder
from rag_indexer_service.indexing.store.ann import SearchIndexState, ann_lists
from rag_indexer_service.indexing.store.keyword_query import build_keyword_query
from rag_indexer_service.indexing.store.search import SearchOptions, ann_probes
from rag_indexer_service.runtime import Runtime, open_runtime
from tests.indexing.conftest import MODELS, openai_settings
from tests.indexing.fake_embedding_api import FakeEmbeddingAPI

WORDS = (
    "кроссовки",
    "куртка",
    "платье",
    "рюкзак",
    "чайник",
    "лампа",
    "зонт",
    "перчатки",
    "шарф",
    "ботинки",
    "ремень",
    "сумка",
    "кружка",
    "свитер",
    "носки",
    "шапка",
)


def with_options(base: Settings, **overrides: Any) -> Settings:
    return load_settings(**{**base.model_dump(), **overrides})


@pytest.fixture
async def ann_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    # 2,000+ chunks make an index of several lists; all probed: ANN must equal exact.
    async with open_runtime(
        with_options(settings, search_ann_min_chunks=1000, search_probes_factor=100.0)
    ) as rt:
        yield rt


async def add_docs(conn: asyncpg.Connection, cabinet_id: int, prefix: str, n: int) -> None:
    await conn.execute("INSERT INTO src_cabinets (id) VALUES ($1)", cabinet_id)
    await conn.executemany(
        "INSERT INTO src_docs (cabinet_id, id, title, body, tag, price) "
        "VALUES ($1, $2, $3, $4, 'a', $5)",
        [
            (
                cabinet_id,
                f"{prefix}{i}",
                f"{WORDS[i % len(WORDS)]} {prefix}{i}",
                f"{WORDS[(i * 7) % len(WORDS)]} и {WORDS[(i * 3) % len(WORDS)]}, партия {i}",
                i,
            )
            for i in range(n)
        ],
    )


async def index_and_build(rt: Runtime, cabinet_id: int) -> None:
    """A run, then the build of the search indexes a worker queues after it when one is due."""
    await rt.indexer.index_cabinet(cabinet_id)
    if (await rt.store.search_index_state(cabinet_id)).build_due:
        await rt.store.refresh_ann_index(cabinet_id)


async def ann_indexes(rt: Runtime, prefix: str = "rag_chunks_ann_") -> dict[str, bool]:
    async with rt.db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT c.relname, i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = 'rag_chunks'::regclass AND starts_with(c.relname, :p)"
            ),
            {"p": prefix},
        )
        return {name: valid for name, valid in rows}


async def scalar(rt: Runtime, sql: str, **params: Any) -> Any:
    async with rt.db.engine.connect() as conn:
        return await conn.scalar(text(sql), params)


async def index_lists(rt: Runtime, name: str) -> int:
    return int(
        await scalar(
            rt,
            "SELECT CAST(o.option_value AS int) FROM pg_class c, "
            "pg_options_to_table(c.reloptions) o WHERE c.relname = :n AND o.option_name = 'lists'",
            n=name,
        )
    )


async def text_indexes(rt: Runtime) -> dict[str, bool]:
    return await ann_indexes(rt, "rag_chunks_fts_")


async def index_scans(rt: Runtime, name: str) -> int:
    sql = "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = :n"
    return int(await scalar(rt, sql, n=name) or 0)


async def scanned_since(rt: Runtime, name: str, before: int) -> bool:
    """Whether index `name` was scanned since it counted `before` scans. A backend flushes
    its statistics lazily (up to 10 s after its last query when it flushed a moment ago) but
    always when it exits, so the pool's connections are closed first."""
    await rt.db.engine.dispose()
    for _ in range(100):
        if await index_scans(rt, name) > before:
            return True
        await asyncio.sleep(0.1)
    return False


async def exact_top(
    rt: Runtime, cabinet_id: int, query: np.ndarray, n: int
) -> list[tuple[str, float]]:
    """(doc_id, cosine similarity) of the `n` nearest chunks, computed here from the rows."""
    async with rt.db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT doc_id, embedding FROM rag_chunks WHERE cabinet_id = :c"),
                {"c": cabinet_id},
            )
        ).all()
    vectors = np.stack([v.to_numpy().astype(np.float64) for _, v in rows])
    sims = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    order = np.argsort(-sims)[:n]
    return [(rows[i][0], float(sims[i])) for i in order]


async def test_ann_search_matches_exact_search_within_the_cabinet(
    ann_runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    # Given two cabinets big enough for an ANN index each
    await add_docs(source_conn, 1, "a", 2100)
    await add_docs(source_conn, 2, "b", 2100)
    for cabinet in (1, 2):
        await index_and_build(ann_runtime, cabinet)
    assert await ann_indexes(ann_runtime) == {
        "rag_chunks_ann_1_0": True,
        "rag_chunks_ann_2_0": True,
    }
    # ... each with the lists its size calls for (short ones: a small cabinet)
    for cabinet in (1, 2):
        state = await ann_runtime.store.cabinet_state(cabinet)
        assert state is not None
        lists = await index_lists(ann_runtime, f"rag_chunks_ann_{cabinet}_0")
        assert lists == ann_lists(state.chunk_count) > state.chunk_count // 500
    scans_before = await index_scans(ann_runtime, "rag_chunks_ann_1_0")

    for query in ("платье партия 17", "рюкзак и зонт", "чайник лампа носки"):
        # When the vector side alone ranks (no keyword: the text is not searched)
        vector = (await ann_runtime.indexer.embedder.embed([query]))[0]
        hits = await ann_runtime.store.search(1, query_text="", query_vector=vector, k=10)

        # Then the hits are the exact nearest neighbours, up to halfvec rounding at ties
        exact = await exact_top(ann_runtime, 1, np.asarray(vector, dtype=np.float64), 10)
        tenth = exact[-1][1]
        assert len(hits) == 10 and [h.vector_rank for h in hits] == list(range(1, 11))
        assert all(h.similarity >= tenth - 2e-3 for h in hits), (hits, exact)
        assert {h.doc_id for h in hits if h.similarity > tenth + 2e-3} == {
            d for d, s in exact if s > tenth + 2e-3
        }
        similarities = [h.similarity for h in hits]
        assert similarities == sorted(similarities, reverse=True) or np.allclose(
            similarities, sorted(similarities, reverse=True), atol=2e-3
        )
        assert all(h.doc_id.startswith("a") for h in hits)  # never the other cabinet

    # ... and they came through the cabinet's ANN index
    assert await scanned_since(ann_runtime, "rag_chunks_ann_1_0", scans_before)


async def test_a_run_leaves_the_search_indexes_to_a_build_of_their_own(
    ann_runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    # Given a cabinet big enough for search indexes of its own, indexed by a run
    await add_docs(source_conn, 1, "a", 2100)
    await ann_runtime.indexer.index_cabinet(1)

    # Then the run built none, the cabinet answers meanwhile (exactly), and a build is due
    assert await ann_indexes(ann_runtime) == await text_indexes(ann_runtime) == {}
    assert len(await ann_runtime.indexer.search(1, "платье", k=10)) == 10
    assert await ann_runtime.store.search_index_state(1) == SearchIndexState(
        ann_lists=None, build_due=True
    )
    assert await ann_runtime.store.missing_search_indexes([1, 2]) == {1}

    # When a build that may not wait finds another one's turn, it leaves it
    async with try_advisory_lock(ann_runtime.db.engine, "rag-indexer:search-index-builds"):
        assert await ann_runtime.store.refresh_ann_index(1, wait=False) is None
    assert await ann_indexes(ann_runtime) == {}

    # When two builds that wait are asked for at once
    built = await asyncio.gather(*(ann_runtime.store.refresh_ann_index(1) for _ in range(2)))

    # Then one builds both indexes, the other waits for it and finds nothing left to do
    assert sorted(built, key=lambda b: b or []) == [[], [0]]
    assert await ann_indexes(ann_runtime) == {"rag_chunks_ann_1_0": True}
    assert await text_indexes(ann_runtime) == {"rag_chunks_fts_1_0": True}
    assert await ann_runtime.store.search_index_state(1) == SearchIndexState(
        ann_lists=await index_lists(ann_runtime, "rag_chunks_ann_1_0"), build_due=False
    )
    assert await ann_runtime.store.missing_search_indexes([1]) == set()
    # ... and the next run (nothing changed) leaves nothing due
    assert (await ann_runtime.indexer.index_cabinet(1)).scan_skipped
    assert not (await ann_runtime.store.search_index_state(1)).build_due


async def test_a_cabinet_grown_to_twice_its_index_lists_gets_them_rebuilt_under_the_same_name(
    ann_runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    # Given a cabinet whose ANN index was built when it was half its size
    await add_docs(source_conn, 1, "a", 1100)
    await index_and_build(ann_runtime, 1)
    name = "rag_chunks_ann_1_0"
    small = await index_lists(ann_runtime, name)
    await source_conn.executemany(
        "INSERT INTO src_docs (cabinet_id, id, title, body, tag, price) "
        "VALUES (1, $1, $2, 'носки', 'a', 1)",
        [(f"n{i}", f"зонт n{i}") for i in range(1100)],
    )
    await ann_runtime.indexer.index_cabinet(1)
    state = await ann_runtime.store.cabinet_state(1)
    assert state is not None and ann_lists(state.chunk_count) >= 2 * small

    # When its build job runs
    assert (await ann_runtime.store.search_index_state(1)).build_due
    assert await ann_runtime.store.refresh_ann_index(1) == [0]

    # Then the index under its name has the lists of its size, nothing of the swap is left,
    # and searches go through it
    assert await index_lists(ann_runtime, name) == ann_lists(state.chunk_count)
    assert await ann_indexes(ann_runtime) == {name: True}
    assert not (await ann_runtime.store.search_index_state(1)).build_due
    before = await index_scans(ann_runtime, name)
    vector = (await ann_runtime.indexer.embedder.embed(["зонт n7"]))[0]
    assert await ann_runtime.store.search(1, query_text="", query_vector=vector, k=5)
    assert await scanned_since(ann_runtime, name, before)


async def test_hybrid_search_stays_in_its_cabinet_on_both_paths(
    settings: Settings, source_conn: asyncpg.Connection
) -> None:
    # Given a big cabinet (ANN) and a small one (exact) with the same words
    await add_docs(source_conn, 1, "a", 1200)
    await add_docs(source_conn, 2, "b", 300)
    async with open_runtime(
        with_options(settings, search_ann_min_chunks=1000, search_probes_factor=1.0)
    ) as rt:
        for cabinet in (1, 2):
            await index_and_build(rt, cabinet)
        assert set(await ann_indexes(rt)) == {"rag_chunks_ann_1_0"}
        assert await text_indexes(rt) == {"rag_chunks_fts_1_0": True}
        text_scans = await index_scans(rt, "rag_chunks_fts_1_0")

        # When each is searched for a word both contain
        big = await rt.indexer.search(1, "кроссовки", k=20)
        small = await rt.indexer.search(2, "кроссовки", k=20)

        # ... the big one's keyword side through its own full-text index
        assert await scanned_since(rt, "rag_chunks_fts_1_0", text_scans)

    # Then each answers from its own documents only, a keyword match on top
    assert len(big) == len(small) == 20
    assert all(h.doc_id.startswith("a") for h in big)
    assert all(h.doc_id.startswith("b") for h in small)
    for hits in (big, small):
        assert hits[0].text_rank is not None and hits[0].matched_terms == ("кроссовки",)


async def test_hits_explain_themselves_and_min_similarity_drops_noise(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_docs(source_conn, 3, "c", 40)
    await index_and_build(runtime, 3)

    # A query sharing one of its words with the documents: the words no document holds
    # ("бега") are left out of the keyword side, which finds the chunks with the other one;
    # each hit names the word it contains, as the query spelt it
    hits = await runtime.indexer.search(3, "Кроссовки для бега", k=5)
    keywords = build_keyword_query("Кроссовки для бега", runtime.indexer.synonyms)
    vector = await runtime.indexer.query_vector("Кроссовки для бега", keywords)
    exact = dict(await exact_top(runtime, 3, np.asarray(vector, dtype=np.float64), 40))
    found = [h for h in hits if h.text_rank is not None]
    assert {h.doc_id for h in found} == {"c0", "c16", "c32"}
    assert {h.doc_id for h in hits[:3]} == {"c0", "c16", "c32"}
    assert all(h.matched_terms == ("Кроссовки",) for h in found)
    assert [h.metadata for h in found] == [{"tag": "a", "price": int(h.doc_id[1:])} for h in found]
    assert all(h.matched_terms == () for h in hits if h.text_rank is None)
    for h in hits:
        assert h.similarity == pytest.approx(exact[h.doc_id], abs=1e-5)
        assert h.score == pytest.approx(
            (1 / (60 + h.vector_rank) if h.vector_rank else 0)
            + (1.5 / (60 + h.text_rank) if h.text_rank else 0)
        )

    # A query sharing nothing: only weak vector hits, which min_similarity removes
    noise = await runtime.indexer.search(3, "пылесос", k=5)
    assert noise and all(h.text_rank is None and h.matched_terms == () for h in noise)
    best, second = sorted((h.similarity for h in noise), reverse=True)[:2]
    assert await runtime.indexer.search(3, "пылесос", k=5, min_similarity=best + 1e-6) == []
    kept = await runtime.indexer.search(3, "пылесос", k=5, min_similarity=(best + second) / 2)
    assert [h.similarity for h in kept] == [best]

    # Keyword matches stay whatever their similarity
    strict = await runtime.indexer.search(3, "кроссовки", k=5, min_similarity=0.99)
    assert strict and all(h.text_rank is not None for h in strict)
    assert all(h.similarity < 0.99 and h.matched_terms == ("кроссовки",) for h in strict)


async def test_a_query_of_words_in_most_chunks_ranks_the_vector_sides_candidates(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    # Given a cabinet whose every chunk holds "партия", another whose every chunk holds
    # "склад", and statistics that say so
    await add_docs(source_conn, 5, "m", 200)
    await source_conn.execute("INSERT INTO src_cabinets (id) VALUES (6)")
    await source_conn.executemany(
        "INSERT INTO src_docs (cabinet_id, id, title, body, tag, price) "
        "VALUES (6, $1, $2, 'со склада', 'a', 1)",
        [(f"s{i}", f"{WORDS[i % len(WORDS)]} s{i}") for i in range(200)],
    )
    for cabinet in (5, 6):
        await index_and_build(runtime, cabinet)
    async with runtime.db.engine.connect() as conn:
        await conn.execute(text("ANALYZE rag_chunks"))
        await conn.commit()

    # When the query is that word alone (as many hits as either side has candidates)
    hits = await runtime.indexer.search(5, "партия", k=50)

    # Then the keyword side did not rank the first chunks holding it (in storage order) but
    # the vector side's candidates: every hit was found by both sides
    exact = await exact_top(runtime, 5, await vector_of(runtime, "партия"), 50)
    assert {h.doc_id for h in hits} == {doc_id for doc_id, _ in exact}
    assert all(h.vector_rank is not None and h.text_rank is not None for h in hits)
    assert all(h.matched_terms == ("партия",) for h in hits)

    # And a common word the cabinet lacks does not empty the keyword side
    both = await runtime.indexer.search(5, "партия склад", k=10)
    assert len(both) == 10
    assert all(h.text_rank is not None and h.matched_terms == ("партия",) for h in both)


async def vector_of(rt: Runtime, query: str) -> np.ndarray:
    keywords = build_keyword_query(query, rt.indexer.synonyms)
    return np.asarray(await rt.indexer.query_vector(query, keywords), dtype=np.float64)


async def test_searches_run_generic_plans_planned_once(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    # Given a cabinet searched more often than Postgres' five custom plans before it weighs
    # a generic one, with words it holds, a word it does not, and no word at all
    await add_docs(source_conn, 5, "e", 40)
    await index_and_build(runtime, 5)
    for query in ("кроссовки", "куртка для бега", "шарф шапка", "?!") * 4:
        await runtime.indexer.search(5, query, k=5)

    # When every connection of the search pool tells what its statements were planned with
    search_engine = runtime.db.search_engine
    size = search_engine.pool.size()
    async with contextlib.AsyncExitStack() as stack:
        connections = [
            await stack.enter_async_context(search_engine.connect()) for _ in range(size)
        ]
        plans = [
            row
            for conn in connections
            for row in await conn.execute(
                text(
                    "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements "
                    "WHERE statement LIKE '%rag_chunks%'"
                )
            )
        ]

    # Then the keyword side, the vector side and the hits ran generic plans, never custom ones
    for marker in ("WITH q AS", "AS distance", "WITH terms AS"):
        ran = [p for p in plans if marker in p.statement]
        assert ran and sum(p.generic_plans for p in ran) > 0, marker
    assert [p.statement[:80] for p in plans if p.custom_plans] == []


async def test_a_query_without_words_finds_nothing_instead_of_arbitrary_chunks(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    """navec embeds punctuation to a zero vector, whose cosine to any chunk is undefined (NaN,
    which Postgres sorts above every number)."""
    await add_docs(source_conn, 4, "p", 20)
    await index_and_build(runtime, 4)
    zero = np.zeros(runtime.indexer.embedder.dim, dtype=np.float32)

    for query, min_similarity in (("!!! ???", None), ("!&|:*()<->", 0.2)):
        hits = await runtime.store.search(
            4, query_text=query, query_vector=zero, k=5, min_similarity=min_similarity
        )
        assert hits == []
    # Keyword hits still come back, with no similarity to report
    [hit] = await runtime.store.search(4, query_text="p3", query_vector=zero, k=5)
    assert hit.doc_id == "p3" and hit.vector_rank is None and hit.similarity == 0.0


async def test_a_search_after_postgres_dropped_its_connections_gets_new_ones(
    runtime: Runtime, source_conn: asyncpg.Connection, database_url: str
) -> None:
    """The search pool does not ping a connection at checkout; a search whose connections
    died since the last one (a Postgres restart, an idle timeout) retries on new ones."""
    await add_docs(source_conn, 5, "r", 30)
    await index_and_build(runtime, 5)
    before = await runtime.indexer.search(5, "кроссовки", k=5)
    assert before

    # When Postgres ends every other session of the database (the search pool's included)
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        ended = await admin.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend') t"
        )
    finally:
        await admin.close()
    assert ended >= 2  # both sides' connections, at least

    # Then the next search answers as the first did
    assert await runtime.indexer.search(5, "кроссовки", k=5) == before


async def test_more_searches_at_once_than_the_pool_has_connections_all_answer(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    """A search holds two connections; searches beyond the pool's capacity wait for a slot
    instead of each holding one connection while waiting for a second."""
    await add_docs(source_conn, 6, "s", 30)
    await index_and_build(runtime, 6)
    alone = await runtime.indexer.search(6, "кроссовки", k=5)
    pool = runtime.db.search_engine.pool.size()

    many = await asyncio.wait_for(
        asyncio.gather(*(runtime.indexer.search(6, "кроссовки", k=5) for _ in range(3 * pool))),
        timeout=20,
    )

    assert many == [alone] * (3 * pool)


async def test_a_dimension_change_swaps_in_a_generation_with_its_own_ann_index(
    settings: Settings, embedding_api: FakeEmbeddingAPI, source_conn: asyncpg.Connection
) -> None:
    # Given a cabinet indexed by a 32-dimension model, with its ANN index
    await add_docs(source_conn, 1, "a", 1100)
    small_settings = openai_settings(
        with_options(settings, search_ann_min_chunks=1000, search_probes_factor=100.0),
        embedding_api,
        embed_batch_size=256,
    )
    large_settings = openai_settings(
        small_settings, embedding_api, openai_model="fake-large", embedding_dim=MODELS["fake-large"]
    )
    async with open_runtime(small_settings) as rt:
        await index_and_build(rt, 1)
        assert await ann_indexes(rt) == {"rag_chunks_ann_1_0": True}
        assert await text_indexes(rt) == {"rag_chunks_fts_1_0": True}
        embedder = OpenAIEmbedder.from_settings(large_settings)
        large = RAGIndexer(
            source=rt.source,
            store=rt.store,
            embedder=embedder,
            options=IndexOptions.from_settings(large_settings),
        )
        try:
            # When a 48-dimension model rebuilds it while the old one keeps answering
            rebuild = asyncio.create_task(large.index_cabinet(1))
            answers: list[str] = []
            while not rebuild.done():
                try:
                    hits = await rt.indexer.search(1, "платье a2", k=3)
                    answers.append("old" if hits and hits[0].doc_id == "a2" else "wrong")
                except EmbedderMismatch:
                    answers.append("refused")
            report = await rebuild

            # Then the swap was one switch and the new generation had its own (48-d) index
            # before it, the old one's is left to the build job, which drops it
            assert report.rebuild
            assert set(answers) <= {"old", "refused"}
            assert answers == sorted(answers, key=["old", "refused"].index)
            assert await ann_indexes(rt) == {
                "rag_chunks_ann_1_0": True,
                "rag_chunks_ann_1_1": True,
            }
            assert (await rt.store.search_index_state(1)).build_due
            assert await rt.store.refresh_ann_index(1) == []
            assert not (await rt.store.search_index_state(1)).build_due
            assert await ann_indexes(rt) == {"rag_chunks_ann_1_1": True}
            assert await text_indexes(rt) == {"rag_chunks_fts_1_1": True}
            # ... and the new model's searches use it
            scans_before = await index_scans(rt, "rag_chunks_ann_1_1")
            chunk = "платье a2\n\nноски и зонт, партия 2"  # the fake model: same text, same vector
            hits = await large.search(1, chunk, k=3)
            assert hits[0].doc_id == "a2" and hits[0].vector_rank == 1
            assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)
            assert await scanned_since(rt, "rag_chunks_ann_1_1", scans_before)
            with pytest.raises(EmbedderMismatch):
                await rt.indexer.search(1, "платье a2")
        finally:
            await embedder.aclose()


@pytest.mark.parametrize(
    ("lists", "chunks", "probes"),
    [
        (2000, 250_716, 112),  # big: 2.5√lists (7k vectors would be 56 lists)
        (160, 20_000, 56),  # short lists: the 7k-vector floor (2.5√lists would be 32)
        (40, 20_000, 16),
        (40, 5_000, 40),  # the floor covers the whole cabinet: every list
        (1, 0, 1),  # counts not known yet: every list, never zero
    ],
)
def test_ann_probes_take_the_larger_of_2_5_sqrt_lists_and_7k_vectors(
    lists: int, chunks: int, probes: int
) -> None:
    assert ann_probes(lists, chunks, SearchOptions()) == probes


@pytest.mark.parametrize(
    ("rows", "lists"),
    [
        (2_000, 16),  # 125 rows a list
        (20_000, 160),  # at least 160 lists...
        (59_000, 160),
        (90_000, 180),  # ...until one per 500 rows is more
        (100_000, 800),  # one per 125 from 100k rows
        (250_716, 2000),  # at most 2,000
        (1_000_000, 2000),
        (0, 1),
    ],
)
def test_ann_lists_are_fine_for_small_cabinets_and_one_per_125_rows_for_big_ones(
    rows: int, lists: int
) -> None:
    assert ann_lists(rows) == lists
