"""A 429 with Retry-After throttles the account, not one request: every slot of the process and,
through Redis, every other worker waits until it has passed (real local embedding server)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from rag_indexer_service.indexing.openai_embedder import OpenAIEmbedder, OpenAIOptions
from rag_indexer_service.indexing.ratelimit import LocalRateLimiter, RateLimits, RedisRateLimiter
from rag_indexer_service.indexing.usage import metering
from tests.indexing.conftest import MODELS
from tests.indexing.fake_embedding_api import FakeEmbeddingAPI, Fault

ANSWER_S = 0.2
RETRY_AFTER_S = 1.0

Make = Callable[..., OpenAIEmbedder]


@pytest.fixture
async def make(embedding_api: FakeEmbeddingAPI, broker_url: str) -> AsyncIterator[Make]:
    """Embedders that share one Redis limiter key, as the workers of one account do."""
    key = f"test:cool-down:{uuid.uuid4().hex}"
    made: list[OpenAIEmbedder] = []

    def build(**overrides: object) -> OpenAIEmbedder:
        options = OpenAIOptions(
            base_url=embedding_api.url,
            api_key=embedding_api.api_key,
            model="fake-small",
            dim=MODELS["fake-small"],
            max_inputs=1,
            timeout_s=5.0,
            **overrides,  # type: ignore[arg-type]
        )
        limiter = RedisRateLimiter(broker_url, key, RateLimits.unlimited())
        made.append(OpenAIEmbedder(options, limiter=limiter))
        return made[-1]

    yield build
    for embedder in made:
        await embedder.aclose()


async def test_retry_after_pauses_every_slot_and_every_worker(
    make: Make, embedding_api: FakeEmbeddingAPI
) -> None:
    # Given four slots in flight, the first request answered at once with 429 Retry-After: 1
    # and the other three still being answered (a 429 answered as slowly as they are races
    # their next requests: those may leave before this process has read the 429) ...
    embedding_api.script(
        Fault(status=429, retry_after=f"{RETRY_AFTER_S:g}"), *[Fault(delay_s=ANSWER_S)] * 3
    )
    busy, other = make(concurrency=4), make(concurrency=1)

    with metering() as usage:
        first = asyncio.create_task(busy.embed([f"текст {n}" for n in range(12)]))
        while not any(h.status == 429 for h in embedding_api.hits):
            await asyncio.sleep(0.01)
        await asyncio.sleep(ANSWER_S + 0.1)
        # ... when another worker of the same account starts meanwhile,
        second = await other.embed(["другой"])
        vectors = await first

    # then nobody sends anything until Retry-After has passed since the 429 was answered:
    # past the four first requests (on their way as it came), every one waits.
    hits = sorted(embedding_api.hits, key=lambda h: h.at)
    throttled_at = next(h.at for h in hits if h.status == 429)
    resumed_after = throttled_at + RETRY_AFTER_S - 0.1
    later = [h.at for h in hits[4:]]
    assert later, "nothing was sent after the 429"
    assert min(later) >= resumed_after, [round(h.at - throttled_at, 3) for h in hits]
    assert next(h.at for h in hits if h.inputs == ["другой"]) >= resumed_after
    assert vectors.shape == (12, MODELS["fake-small"]) and second.shape[0] == 1
    assert usage.retries == 1
    assert usage.throttled_s >= RETRY_AFTER_S - 0.2


async def test_the_local_limiter_holds_a_cool_down_too() -> None:
    now = [100.0]
    limiter = LocalRateLimiter(RateLimits.unlimited(), clock=lambda: now[0])

    await limiter.pause(2.0)
    await limiter.pause(0.5)  # a shorter pause never shortens a running one

    assert limiter.try_admit(1, now=101.0) == 1.0
    assert limiter.try_admit(1, now=102.0) == 0
