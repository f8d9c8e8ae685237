"""Fixtures of the indexing tests: the fake embedding API and settings that point at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from rag_indexer_service.config import Settings, load_settings
from rag_indexer_service.runtime import Runtime, open_runtime
from tests.indexing.fake_embedding_api import FakeEmbeddingAPI

MODELS = {"fake-small": 32, "fake-large": 48}


@pytest.fixture
def embedding_api() -> Iterator[FakeEmbeddingAPI]:
    api = FakeEmbeddingAPI(models=dict(MODELS))
    api.start()
    yield api
    api.stop()


def openai_settings(base: Settings, api: FakeEmbeddingAPI, **overrides: Any) -> Settings:
    """`base` switched to the OpenAI embedder at `api`, with quick retries, then `overrides`."""
    values = base.model_dump()
    values.update(
        embedder="openai",
        openai_base_url=api.url,
        openai_api_key=api.api_key,
        openai_model="fake-small",
        embedding_dim=MODELS["fake-small"],
        embedding_timeout_s=2.0,
        embedding_backoff_base_s=0.02,
        embedding_backoff_max_s=0.1,
        embedding_max_attempts=4,
        embed_batch_size=8,
    )
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def api_settings(settings: Settings, embedding_api: FakeEmbeddingAPI) -> Settings:
    return openai_settings(settings, embedding_api)


@pytest.fixture
async def api_runtime(api_settings: Settings) -> AsyncIterator[Runtime]:
    async with open_runtime(api_settings) as rt:
        yield rt
