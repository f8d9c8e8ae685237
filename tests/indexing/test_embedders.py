"""HashingEmbedder: shape, normalisation, determinism, similarity (no database)."""

from __future__ import annotations

import numpy as np
import pytest

from rag_indexer_service.config import load_settings
from rag_indexer_service.errors import ConfigError
from rag_indexer_service.indexing.embedders import HashingEmbedder, build_embedder

TEXTS = [
    "Кроссовки беговые Nike, чёрные, р. 42",
    "Кроссовки для бега Nike чёрного цвета",
    "Корм сухой для кошек Royal Canin, 1,5 кг",
]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


async def test_rows_are_unit_vectors_of_the_configured_dim() -> None:
    vectors = await HashingEmbedder(dim=64).embed(TEXTS)
    assert vectors.shape == (3, 64) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


async def test_empty_and_wordless_texts_give_zero_rows() -> None:
    embedder = HashingEmbedder(dim=32)
    assert (await embedder.embed([])).shape == (0, 32)
    vectors = await embedder.embed(["", "hello"])
    assert not vectors[0].any()
    assert np.isclose(np.linalg.norm(vectors[1]), 1.0)


async def test_texts_sharing_words_are_closer_than_unrelated_ones() -> None:
    shoes, running_shoes, cat_food = await HashingEmbedder().embed(TEXTS)
    assert _cosine(shoes, running_shoes) > _cosine(shoes, cat_food) + 0.2


async def test_case_does_not_matter_and_one_text_embeds_like_in_a_batch() -> None:
    embedder = HashingEmbedder(dim=128)
    upper = await embedder.embed([TEXTS[0].upper()])
    batch = await embedder.embed(TEXTS)
    assert np.allclose(upper[0], batch[0])


async def test_large_batches_match_small_ones() -> None:
    """Batches of 16+ run in a thread; the vectors must not depend on that."""
    embedder = HashingEmbedder(dim=96)
    many = await embedder.embed(TEXTS * 10)
    assert np.array_equal(many[:3], await embedder.embed(TEXTS))


def test_vectors_are_pinned_for_the_v1_id() -> None:
    """Indexes built by `hashing:v1` are searched by later processes and releases, so its
    vectors must not change (they would if they depended on Python's salted `hash()`)."""
    a, b, c, d = 0.291516, 0.367853, 0.183926, 0.0
    expected = [a, d, a, b, d, a, d, b, b, -c, -c, c, a, -c, a, c]
    vector = HashingEmbedder(dim=16).embed_sync([TEXTS[0]])[0]
    assert np.allclose(vector, expected, atol=1e-6)


def test_id_names_the_dim() -> None:
    assert HashingEmbedder(dim=64).id == "hashing:v1:64"
    assert HashingEmbedder(dim=64).id != HashingEmbedder(dim=65).id


def test_too_small_dim_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="at least 8"):
        HashingEmbedder(dim=7)


def test_build_embedder_defaults_to_hashing_with_the_settings_dim() -> None:
    embedder = build_embedder(load_settings(embedder="hashing", embedding_dim=40))
    assert isinstance(embedder, HashingEmbedder) and embedder.dim == 40
