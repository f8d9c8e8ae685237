"""OpenAIEmbedder against a real local HTTP server that speaks the embeddings API and fails on
command; the rate limiters; the settings that choose them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest

from rag_indexer_service.config import load_settings
from rag_indexer_service.errors import ConfigError, EmbeddingRejected, EmbeddingUnavailable
from rag_indexer_service.indexing.openai_embedder import OpenAIEmbedder, OpenAIOptions
from rag_indexer_service.indexing.ratelimit import (
    LocalRateLimiter,
    RateLimits,
    RedisRateLimiter,
)
from rag_indexer_service.indexing.retrying import retry_after_s
from rag_indexer_service.indexing.tokens import estimate_tokens
from rag_indexer_service.indexing.usage import metering
from tests.indexing.conftest import MODELS
from tests.indexing.fake_embedding_api import FakeEmbeddingAPI, Fault, fake_vector

MakeEmbedder = Callable[..., OpenAIEmbedder]


@pytest.fixture
async def make_embedder(embedding_api: FakeEmbeddingAPI) -> AsyncIterator[MakeEmbedder]:
    made: list[OpenAIEmbedder] = []

    def make(**overrides: object) -> OpenAIEmbedder:
        values: dict[str, object] = {
            "base_url": embedding_api.url,
            "api_key": embedding_api.api_key,
            "model": "fake-small",
            "dim": MODELS["fake-small"],
            "timeout_s": 2.0,
            "max_attempts": 4,
            "backoff_base_s": 0.02,
            "backoff_max_s": 0.1,
            **overrides,
        }
        embedder = OpenAIEmbedder(OpenAIOptions(**values))  # type: ignore[arg-type]
        made.append(embedder)
        return embedder

    yield make
    for embedder in made:
        await embedder.aclose()


def expected(texts: list[str], model: str = "fake-small") -> np.ndarray:
    return np.vstack([fake_vector(model, t, MODELS[model]) for t in texts])


# -- batching --------------------------------------------------------------------------------


async def test_batches_by_count_and_estimated_tokens_and_keeps_order(
    make_embedder: MakeEmbedder, embedding_api: FakeEmbeddingAPI
) -> None:
    embedder = make_embedder(max_inputs=3, max_tokens_per_request=40, concurrency=2)
    texts = [f"текст номер {n} " + "слово " * (n % 4) for n in range(10)] + ["текст номер 1 "]

    with metering() as usage:
        vectors = await embedder.embed(texts)

    np.testing.assert_allclose(vectors, expected(texts), atol=1e-6)
    sent = embedding_api.ok_hits()
    assert sorted(t for h in sent for t in h.inputs) == sorted(set(texts))  # duplicate sent once
    assert all(len(h.inputs) <= 3 for h in sent)
    assert all(sum(estimate_tokens(t) for t in h.inputs) <= 40 for h in sent)
    assert usage.requests == len(sent) >= 4
    assert usage.tokens == sum(h.tokens for h in sent)  # the API's own count, not the estimate
    assert usage.retries == usage.truncated == 0


async def test_overlong_input_is_truncated_and_counted_never_sent_whole(
    make_embedder: MakeEmbedder, embedding_api: FakeEmbeddingAPI
) -> None:
    embedder = make_embedder(max_tokens_per_input=20)
    long_text = "очень длинный текст " * 50

    with metering() as usage:
        vectors = await embedder.embed(["short", long_text])

    (hit,) = embedding_api.ok_hits()
    assert hit.inputs[0] == "short" and long_text.startswith(hit.inputs[1])
    assert estimate_tokens(hit.inputs[1]) <= 20
    assert usage.truncated == 1
    np.testing.assert_allclose(vectors, expected(hit.inputs), atol=1e-6)


# -- transient faults ------------------------------------------------------------------------


async def test_429_with_retry_after_500_and_a_timeout_are_retried_inside_the_call(
    make_embedder: MakeEmbedder, embedding_api: FakeEmbeddingAPI
) -> None:
    embedder = make_embedder(timeout_s=0.5)
    embedding_api.script(Fault(status=429, retry_after="1"), Fault(status=500), Fault(delay_s=1.5))

    with metering() as usage:
        vectors = await embedder.embed(["a", "b"])

    np.testing.assert_allclose(vectors, expected(["a", "b"]), atol=1e-6)
    statuses = [h.status for h in embedding_api.hits]
    assert statuses == [429, 500, 200, 200]  # the slow one answered 200 after we gave up
    assert usage.requests == 4 and usage.retries == 3
    assert usage.throttled_s >= 1.0  # Retry-After was honoured
    assert embedding_api.hits[1].at - embedding_api.hits[0].at >= 0.99


async def test_persistent_5xx_ends_in_a_transient_error_after_the_attempts(
    make_embedder: MakeEmbedder, embedding_api: FakeEmbeddingAPI
) -> None:
    embedder = make_embedder(max_attempts=3)
    embedding_api.always = Fault(status=503)

    with metering() as usage, pytest.raises(EmbeddingUnavailable, match=r"HTTP 503.*3 attempts"):
        await embedder.embed(["a"])

    assert len(embedding_api.hits) == 3 and usage.retries == 2


async def test_a_retry_after_longer_than_accepted_hands_over_to_the_worker_at_once(
    make_embedder: MakeEmbedder, embedding_api: FakeEmbeddingAPI
) -> None:
    embedder = make_embedder(max_retry_after_s=30)
    embedding_api.always = Fault(status=429, retry_after="3600")

    with pytest.raises(EmbeddingUnavailable, match="retry after 3600 s"):
        await embedder.embed(["a"])

    assert len(embedding_api.hits) == 1


async def test_unreachable_server_is_transient(make_embedder: MakeEmbedder) -> None:
    embedder = make_embedder(base_url="http://127.0.0.1:9/v1", max_attempts=2)

    with pytest.raises(EmbeddingUnavailable, match="connection failed"):
        await embedder.embed(["a"])


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    now = dt.datetime(2026, 11, 3, 12, 0, 0, tzinfo=dt.UTC)

    assert retry_after_s({"retry-after": "7"}, now=now) == 7
    assert retry_after_s({"retry-after": "Tue, 03 Nov 2026 12:00:30 GMT"}, now=now) == 30
    assert retry_after_s({"retry-after": "Tue, 03 Nov 2026 11:00:00 GMT"}, now=now) == 0
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}, now=now) == 0.25
    assert retry_after_s({"retry-after": "soon"}, now=now) is None
    assert retry_after_s({}, now=now) is None


# -- permanent faults ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault(status=400), r"HTTP 400.*RAG_OPENAI_MODEL"),
        (Fault(status=403), r"HTTP 403"),
        (Fault(status=429, error_code="insufficient_quota"), r"quota exhausted"),
        (Fault(wrong_dim=True), r"vectors of 33 dimensions, expected 32"),
    ],
)
async def test_permanent_faults_raise_at_once_with_the_reason(
    make_embedder: MakeEmbedder, embedding_api: FakeEmbeddingAPI, fault: Fault, message: str
) -> None:
    embedder = make_embedder()
    embedding_api.always = fault

    with pytest.raises(EmbeddingRejected, match=message):
        await embedder.embed(["a"])

    assert len(embedding_api.hits) == 1  # no retry loop burning a quota


async def test_wrong_key_is_rejected_with_a_hint(make_embedder: MakeEmbedder) -> None:
    embedder = make_embedder(api_key="sk-wrong")

    with pytest.raises(EmbeddingRejected, match=r"HTTP 401.*check RAG_OPENAI_API_KEY"):
        await embedder.embed(["a"])


async def test_unknown_model_is_rejected(make_embedder: MakeEmbedder) -> None:
    embedder = make_embedder(model="no-such-model")

    with pytest.raises(EmbeddingRejected, match=r"HTTP 404.*RAG_OPENAI_MODEL"):
        await embedder.embed(["a"])


async def test_one_failing_batch_fails_the_whole_call(
    make_embedder: MakeEmbedder, embedding_api: FakeEmbeddingAPI
) -> None:
    embedder = make_embedder(max_inputs=1, concurrency=4)
    embedding_api.script(Fault(), Fault(status=401))

    with pytest.raises(EmbeddingRejected, match="HTTP 401"):
        await embedder.embed(["a", "b", "c", "d"])


# -- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "RAG_OPENAI_API_KEY is required"),
        ({"openai_api_key": "changeme"}, "RAG_OPENAI_API_KEY is a placeholder"),
        ({"openai_api_key": "k", "openai_model": "mystery"}, "RAG_EMBEDDING_DIM"),
        ({"openai_api_key": "k", "openai_base_url": "api.example.com"}, "OPENAI_BASE_URL"),
    ],
)
def test_openai_settings_are_checked_at_load(
    sources_file: Path, overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(sources_file=sources_file, embedder="openai", **overrides)


def test_embedder_id_names_provider_model_and_size(sources_file: Path) -> None:
    def embedder(**overrides: object) -> OpenAIEmbedder:
        return OpenAIEmbedder.from_settings(
            load_settings(sources_file=sources_file, embedder="openai", **overrides)
        )

    native = embedder(openai_api_key="k")
    reduced = embedder(openai_api_key="k", openai_dimensions=256)
    local = embedder(openai_api_key="k", openai_model="nomic", embedding_dim=768)

    assert native.id == "openai:text-embedding-3-small:1536"
    assert not native.options.send_dimensions
    assert reduced.id == "openai:text-embedding-3-small:256" and reduced.options.send_dimensions
    assert local.id == "openai:nomic:768" and not local.options.send_dimensions


# -- rate limiters ---------------------------------------------------------------------------


def test_local_limiter_never_lets_a_window_hold_more_than_the_limit() -> None:
    limiter = LocalRateLimiter(RateLimits(requests=2, tokens=100, window_s=10))

    assert limiter.try_admit(10, now=0.0) == 0
    assert limiter.try_admit(10, now=1.0) == 0
    assert limiter.try_admit(10, now=2.0) == 8.0  # the first request leaves the window at 10
    assert limiter.try_admit(10, now=10.0) == 0
    assert limiter.try_admit(95, now=11.5) == 8.5  # 10 + 95 tokens > 100 until 10.0 leaves
    assert limiter.try_admit(80, now=11.5) == 0  # 10 + 80 fit in 100


def test_per_minute_limits_scale_to_the_window() -> None:
    assert RateLimits.per_minute(90, 6000, window_s=2) == RateLimits(3, 200, 2)
    assert RateLimits.per_minute(10, None, window_s=1) == RateLimits(1, None, 1)


async def test_redis_limiter_budget_is_shared_by_every_client(broker_url: str) -> None:
    key = f"test:rate:{uuid.uuid4().hex}"
    limits = RateLimits(requests=2, tokens=100, window_s=60)
    first, second = (
        RedisRateLimiter(broker_url, key, limits),
        RedisRateLimiter(broker_url, key, limits),
    )
    try:
        assert await first.try_admit(10) == 0
        assert await second.try_admit(60) == 0
        assert 59 < await first.try_admit(10) <= 60  # requests: the budget of 2 is spent
        other = RedisRateLimiter(broker_url, key + ":tokens", RateLimits(None, 100, 60))
        assert await other.try_admit(70) == 0
        assert await other.try_admit(40) > 0  # 110 tokens would not fit
        assert await other.try_admit(30) == 0
        await other.aclose()
    finally:
        await first.aclose()
        await second.aclose()
