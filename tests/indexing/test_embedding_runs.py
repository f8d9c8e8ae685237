"""Indexing runs with the OpenAI embedder against a real local embeddings server: faults during
runs, the embedding cache, model changes with atomic swaps, and the global rate limit across
real worker processes."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import dramatiq
import numpy as np
import pytest
import redis
from sqlalchemy import text

from rag_indexer_service.config import Settings
from rag_indexer_service.errors import EmbedderMismatch, EmbeddingRejected
from rag_indexer_service.indexing.indexer import IndexOptions, RAGIndexer
from rag_indexer_service.indexing.openai_embedder import OpenAIEmbedder
from rag_indexer_service.jobs.broker import build_broker
from rag_indexer_service.jobs.dispatch import Dispatcher, DispatchOptions
from rag_indexer_service.jobs.worker import setup_worker
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime
from tests.helpers import add_cabinet, wait_for_run
from tests.indexing.conftest import MODELS, openai_settings
from tests.indexing.fake_embedding_api import FakeEmbeddingAPI, Fault, fake_tokens, fake_vector

MakeDispatcher = Callable[..., Dispatcher]
MakeIndexer = Callable[..., RAGIndexer]


@pytest.fixture
def make_dispatcher(
    worker_settings: Settings, embedding_api: FakeEmbeddingAPI, ledger: Ledger
) -> Iterator[MakeDispatcher]:
    """A StubBroker and an in-process Dramatiq worker whose runs embed through the fake API."""
    workers: list[tuple[dramatiq.Worker, dramatiq.Broker]] = []

    def make(**overrides: Any) -> Dispatcher:
        settings = openai_settings(worker_settings, embedding_api, **overrides)
        broker = build_broker(settings, allow_stub=True)
        setup_worker(broker, settings)
        worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
        worker.start()
        workers.append((worker, broker))
        return Dispatcher(broker, ledger, DispatchOptions.from_settings(settings))

    yield make
    for worker, broker in workers:
        worker.stop()
        broker.close()


@pytest.fixture
async def make_indexer(
    api_runtime: Runtime, api_settings: Settings, embedding_api: FakeEmbeddingAPI
) -> AsyncIterator[MakeIndexer]:
    """Indexers on the same store and source, embedding with other settings (another model)."""
    made: list[OpenAIEmbedder] = []

    def make(**overrides: Any) -> RAGIndexer:
        settings = openai_settings(api_settings, embedding_api, **overrides)
        embedder = OpenAIEmbedder.from_settings(settings)
        made.append(embedder)
        return RAGIndexer(
            source=api_runtime.source,
            store=api_runtime.store,
            embedder=embedder,
            options=IndexOptions.from_settings(settings),
        )

    yield make
    for embedder in made:
        await embedder.aclose()


async def stored_chunks(rt: Runtime, cabinet_id: int) -> list[tuple[int, str, np.ndarray]]:
    """`(generation, content, embedding)` of every chunk row of the cabinet."""
    return [
        (c.generation, c.content, np.asarray(c.embedding.to_numpy()))
        for c in await rt.store.chunks(cabinet_id)
    ]


def assert_vectors_of(chunks: list[tuple[int, str, np.ndarray]], model: str) -> None:
    for _, content, vector in chunks:
        np.testing.assert_allclose(vector, fake_vector(model, content, MODELS[model]), atol=1e-6)


# -- faults during runs ----------------------------------------------------------------------


async def test_run_completes_through_transient_faults_with_the_right_vectors(
    make_dispatcher: MakeDispatcher,
    embedding_api: FakeEmbeddingAPI,
    api_runtime: Runtime,
    ledger: Ledger,
    source_conn: asyncpg.Connection,
) -> None:
    await add_cabinet(source_conn, 1, docs=20)
    dispatcher = make_dispatcher(embedding_timeout_s=0.5)
    embedding_api.script(Fault(status=429, retry_after="1"), Fault(status=503), Fault(delay_s=1))

    run = await wait_for_run(ledger, (await dispatcher.trigger(1, "manual")).run.id)

    assert run.status == "succeeded" and run.attempt == 1
    chunks = await stored_chunks(api_runtime, 1)
    assert len(chunks) == 20
    assert_vectors_of(chunks, "fake-small")
    counters = run.counters
    assert counters["embedding_retries"] == 3
    assert counters["embedding_requests"] == 3 + 3  # 20 texts in batches of 8, plus 3 retries
    assert counters["embedding_tokens"] == sum(fake_tokens(c) for _, c, _ in chunks)
    assert (counters["embedding_throttled_ms"] or 0) >= 1000
    hits = await api_runtime.indexer.search(1, "Товар 7", k=3)
    assert hits[0].doc_id == "d7"


async def test_exhausted_retries_end_the_attempt_and_the_worker_retries_the_run(
    make_dispatcher: MakeDispatcher,
    embedding_api: FakeEmbeddingAPI,
    ledger: Ledger,
    source_conn: asyncpg.Connection,
) -> None:
    await add_cabinet(source_conn, 1, docs=5)
    dispatcher = make_dispatcher(embedding_max_attempts=2)
    embedding_api.script(Fault(status=503), Fault(status=502))

    run = await wait_for_run(ledger, (await dispatcher.trigger(1, "manual")).run.id)

    assert run.status == "succeeded" and run.attempt == 2
    assert [h.status for h in embedding_api.hits] == [503, 502, 200]


async def test_rejected_key_fails_the_run_once_and_the_old_index_keeps_serving(
    make_dispatcher: MakeDispatcher,
    embedding_api: FakeEmbeddingAPI,
    api_runtime: Runtime,
    ledger: Ledger,
    source_conn: asyncpg.Connection,
) -> None:
    await add_cabinet(source_conn, 1, docs=10)
    dispatcher = make_dispatcher()
    first = await wait_for_run(ledger, (await dispatcher.trigger(1, "manual")).run.id)
    assert first.status == "succeeded"
    await source_conn.execute(
        "UPDATE src_docs SET body = 'новый текст', version = 2 WHERE id = 'd3'"
    )
    requests_before = len(embedding_api.hits)

    embedding_api.api_key = "rotated"  # the key we have is revoked
    run = await wait_for_run(ledger, (await dispatcher.trigger(1, "manual")).run.id)

    assert run.status == "failed" and run.attempt == 1
    assert run.error is not None and "HTTP 401" in run.error
    assert "RAG_OPENAI_API_KEY" in run.error
    assert len(embedding_api.hits) == requests_before + 1  # no retries burning a quota
    embedding_api.api_key = "test-key"
    hits = await api_runtime.indexer.search(1, "Товар 3", k=1)
    assert hits[0].doc_id == "d3" and "Описание товара номер 3" in hits[0].content


async def test_searching_with_another_embedder_than_the_index_was_built_with_is_refused(
    runtime: Runtime, api_runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=3)
    await runtime.indexer.index_cabinet(1)  # the hashing embedder

    with pytest.raises(EmbedderMismatch, match=r"indexed with hashing:v1:384.*fake-small:32"):
        await api_runtime.indexer.search(1, "Товар 1")


# -- the embedding cache ---------------------------------------------------------------------


async def test_identical_text_in_another_cabinet_comes_from_the_cache(
    api_runtime: Runtime, embedding_api: FakeEmbeddingAPI, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=10)
    await add_cabinet(source_conn, 2, docs=10)  # the same ten texts
    first = await api_runtime.indexer.index_cabinet(1)
    requests = len(embedding_api.hits)

    second = await api_runtime.indexer.index_cabinet(2)

    assert (first.chunks_embedded, first.embedding_cache_hits) == (10, 0)
    assert (second.chunks_embedded, second.embedding_cache_hits) == (0, 10)
    assert second.embedding_requests == 0 and len(embedding_api.hits) == requests
    assert_vectors_of(await stored_chunks(api_runtime, 2), "fake-small")


async def test_cache_is_pruned_by_age_and_by_size(
    api_runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=10)
    await api_runtime.indexer.index_cabinet(1)
    cache = api_runtime.store.embedding_cache()
    async with api_runtime.db.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE rag_embedding_cache SET last_used_at = now() - interval '40 days' "
                "WHERE text_hash IN (SELECT text_hash FROM rag_embedding_cache LIMIT 3)"
            )
        )

    assert await cache.prune(max_age_s=30 * 86400, max_rows=100) == 3
    assert await cache.prune(max_age_s=30 * 86400, max_rows=5) == 2
    async with api_runtime.db.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM rag_embedding_cache")) == 5


# -- model changes ---------------------------------------------------------------------------


async def generations(rt: Runtime, cabinet_id: int) -> dict[int, int]:
    """`generation -> chunks` of the cabinet."""
    return dict(Counter(c.generation for c in await rt.store.chunks(cabinet_id)))


async def test_failed_rebuild_leaves_the_old_index_serving_and_the_next_run_resumes_it(
    api_runtime: Runtime,
    make_indexer: MakeIndexer,
    embedding_api: FakeEmbeddingAPI,
    source_conn: asyncpg.Connection,
) -> None:
    await add_cabinet(source_conn, 1, docs=60)
    await api_runtime.indexer.index_cabinet(1)
    large = make_indexer(
        openai_model="fake-large", embedding_dim=MODELS["fake-large"], write_batch_docs=50
    )
    # The first batch of 50 documents (7 requests) is written, then wrong-sized vectors.
    embedding_api.script(*[Fault()] * 7)
    embedding_api.always = Fault(wrong_dim=True)

    with pytest.raises(EmbeddingRejected, match="vectors of 49 dimensions, expected 48"):
        await large.index_cabinet(1)

    embedding_api.always = None
    assert await generations(api_runtime, 1) == {0: 60, 1: 50}
    state = await api_runtime.store.cabinet_state(1)
    assert state is not None and state.embedder_id == "openai:fake-small:32"
    hits = await api_runtime.indexer.search(1, "Товар 42", k=1)
    assert hits[0].doc_id == "d42"
    with pytest.raises(EmbedderMismatch, match="rebuild with openai:fake-large:48 is under way"):
        await large.search(1, "Товар 42")

    report = await large.index_cabinet(1)

    assert report.rebuild and (report.docs_unchanged, report.docs_updated) == (50, 10)
    assert report.embedding_requests == 2
    assert await generations(api_runtime, 1) == {1: 60}
    assert_vectors_of(await stored_chunks(api_runtime, 1), "fake-large")
    assert (await large.search(1, "Товар 42", k=1))[0].doc_id == "d42"
    with pytest.raises(EmbedderMismatch, match="indexed with openai:fake-large:48"):
        await api_runtime.indexer.search(1, "Товар 42")


async def test_model_change_swaps_atomically_while_searches_keep_answering(
    api_runtime: Runtime,
    make_indexer: MakeIndexer,
    embedding_api: FakeEmbeddingAPI,
    source_conn: asyncpg.Connection,
) -> None:
    # Given an index built with fake-small, then new text and a new model at once
    await add_cabinet(source_conn, 1, docs=40)
    await api_runtime.indexer.index_cabinet(1)
    await source_conn.execute("UPDATE src_docs SET body = 'Обновлённое описание ' || id")
    old = api_runtime.indexer
    new = make_indexer(
        openai_model="fake-large",
        embedding_dim=MODELS["fake-large"],
        embedding_concurrency=1,
        embed_batch_size=4,
        batch_size_docs=8,
        write_batch_docs=8,
    )
    embedding_api.delay_s = 0.1  # the rebuild: five batches of two slow requests each

    async def look(indexer: RAGIndexer) -> str:
        try:
            hits = await indexer.search(1, "Товар описание", k=10)
        except EmbedderMismatch:
            return "refused"
        kinds = {"new" if "Обновлённое" in h.content else "old" for h in hits}
        return kinds.pop() if len(kinds) == 1 else f"mixed:{sorted(kinds)}"

    # When the new model rebuilds the cabinet while both kinds of searcher keep asking
    rebuild = asyncio.create_task(new.index_cabinet(1))
    seen: list[tuple[int, str, str]] = []
    while not rebuild.done():
        building = len(await generations(api_runtime, 1))
        seen.append((building, await look(old), await look(new)))
    report = await rebuild
    seen.append((len(await generations(api_runtime, 1)), await look(old), await look(new)))

    # Then each searcher saw one complete generation or a clear refusal, never a mix
    assert report.rebuild and report.docs_updated == 40
    # (("old", "new"): the swap fell between the two searches of one observation.)
    allowed = {("old", "refused"), ("old", "new"), ("refused", "new")}
    assert {(o, n) for _, o, n in seen} <= allowed
    assert any(gens == 2 and o == "old" for gens, o, _ in seen)  # old served mid-rebuild
    for searcher in (1, 2):  # each searcher switches once, for good
        switched = [obs[searcher] != ("old", "refused")[searcher - 1] for obs in seen]
        assert switched == sorted(switched) and switched[-1]
    assert await generations(api_runtime, 1) == {1: 40}  # the old generation is gone


# -- the global rate limit -------------------------------------------------------------------


async def test_global_rate_limit_holds_across_two_worker_processes(
    spawn: Callable[..., subprocess.Popen[bytes]],
    worker_env: dict[str, str],
    worker_settings: Settings,
    broker_url: str,
    embedding_api: FakeEmbeddingAPI,
    ledger: Ledger,
    source_conn: asyncpg.Connection,
) -> None:
    # Given four cabinets of six distinct texts (three requests each at two texts a request)
    # and two worker processes sharing a budget of 3 requests per 2 s window
    for cabinet in range(1, 5):
        await source_conn.execute("INSERT INTO src_cabinets (id) VALUES ($1)", cabinet)
        await source_conn.executemany(
            "INSERT INTO src_docs (cabinet_id, id, title, body) VALUES ($1, $2, $3, $4)",
            [(cabinet, f"d{n}", f"Кабинет {cabinet}", f"товар {n}") for n in range(6)],
        )
    env = {
        **worker_env,
        "RAG_EMBEDDER": "openai",
        "RAG_OPENAI_BASE_URL": embedding_api.url,
        "RAG_OPENAI_API_KEY": embedding_api.api_key,
        "RAG_OPENAI_MODEL": "fake-small",
        "RAG_EMBEDDING_DIM": str(MODELS["fake-small"]),
        "RAG_EMBED_BATCH_SIZE": "2",
        "RAG_EMBEDDING_RPM": "90",
        "RAG_EMBEDDING_RATE_WINDOW_S": "2",
    }
    workers = [spawn("worker", "--processes", "1", "--threads", "2", env=env) for _ in range(2)]
    client = redis.Redis.from_url(broker_url)
    for _ in range(600):  # both workers are consuming
        if client.zcard("dramatiq:__heartbeats__") >= 2:
            break
        await asyncio.sleep(0.05)
    client.close()
    settings = worker_settings.model_copy(update={"broker_url": broker_url})
    dispatcher = Dispatcher(build_broker(settings), ledger, DispatchOptions.from_settings(settings))

    # When all four are triggered at once
    triggered = [await dispatcher.trigger(c, "manual") for c in range(1, 5)]
    try:
        runs = [await wait_for_run(ledger, t.run.id, timeout_s=60) for t in triggered]
    finally:
        for worker in workers:  # one SIGTERM to each master: a graceful stop
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            await asyncio.to_thread(worker.wait, 20)

    # Then no stretch of the window on the server's clock saw more than 3 requests
    assert [r.status for r in runs] == ["succeeded"] * 4
    assert len({r.worker_id for r in runs}) == 2
    arrivals = sorted(h.at for h in embedding_api.hits)
    assert len(arrivals) == 12
    # Slack: a request reaches the server a little after the limiter admitted it (more while
    # the other worker process is still starting up on the same two cores).
    window_s, slack_s = 2.0, 0.5
    busiest = max(sum(1 for u in arrivals if t <= u < t + window_s - slack_s) for t in arrivals)
    assert busiest <= 3
    assert sum(r.counters["embedding_throttled_ms"] or 0 for r in runs) > 0
