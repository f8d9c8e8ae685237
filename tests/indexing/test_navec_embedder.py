"""NavecEmbedder on the real vectors shipped in the natasha wheel, and through a real index."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import asyncpg
import numpy as np
import pytest

from rag_indexer_service.config import Settings, load_settings
from rag_indexer_service.errors import ConfigError
from rag_indexer_service.indexing.embedders import build_embedder
from rag_indexer_service.indexing.navec_embedder import NavecEmbedder, shipped_vectors_path
from rag_indexer_service.runtime import open_runtime

RUNNING_SHOES = (
    "Товар: Кроссовки беговые Asics Gel-Kayano, синие, р. 42\nКатегория: Обувь\n\n"
    "Подошва из лёгкой пены EVA хорошо амортизирует при беге."
)
FACE_CREAM = (
    "Товар: Крем для лица увлажняющий Nivea, 50 мл\nКатегория: Красота\n\n"
    "В составе гиалуроновая кислота, пантенол и масло ши."
)
SMARTPHONE = (
    "Товар: Смартфон Samsung Ultra, 8/256 ГБ\nКатегория: Электроника\n\n"
    "Экран AMOLED 6,7 дюйма, аккумулятор 5000 мАч."
)
FRYING_PAN = (
    "Товар: Сковорода антипригарная Rondell, 26 см\nКатегория: Дом и сад\n\n"
    "Антипригарное покрытие с титановым напылением."
)


@pytest.fixture(scope="module")
def navec() -> NavecEmbedder:
    return NavecEmbedder()


def test_shipped_vectors_load_without_importing_natasha() -> None:
    # A fresh interpreter: importing natasha would pull in pymorphy2, which fails on 3.11.
    script = (
        "import sys\n"
        "from rag_indexer_service.indexing.navec_embedder import NavecEmbedder\n"
        "v = NavecEmbedder().embed_sync(['кроссовки для бега'])\n"
        "assert v.shape == (1, 384), v.shape\n"
        "print(sorted(m for m in ('natasha', 'pymorphy2', 'slovnet') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=90, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_vectors_are_unit_length_deterministic_and_shaped(navec: NavecEmbedder) -> None:
    texts = [RUNNING_SHOES, "пауэрбанк A500S", "Nike", "кроссовки"]

    first = navec.embed_sync(texts)
    again = NavecEmbedder().embed_sync(list(reversed(texts)))[::-1]

    assert first.shape == (4, navec.dim) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(first, again)


def test_texts_without_words_are_zero_vectors(navec: NavecEmbedder) -> None:
    vectors = navec.embed_sync(["", "42 2025-08-31 · !!"])

    assert not vectors.any()


def test_synonyms_land_nearer_than_unrelated_products(navec: NavecEmbedder) -> None:
    docs = navec.embed_sync([RUNNING_SHOES, FACE_CREAM, SMARTPHONE, FRYING_PAN])
    queries = navec.embed_sync(["обувь для пробежки", "мобильник"])

    similarity = queries @ docs.T

    assert similarity[0].argmax() == 0  # running shoes
    assert similarity[1].argmax() == 2  # smartphone


def test_unknown_words_match_by_their_character_ngrams(navec: NavecEmbedder) -> None:
    one, same, other = navec.embed_sync(
        ["Видеорегистратор Zyxwq A500S", "Zyxwq A500S", "Видеорегистратор Qlorp B77"]
    )

    assert one[300:].any() and float(one @ same) > float(one @ other)


def test_factory_builds_it_and_its_id_names_the_model() -> None:
    embedder = build_embedder(load_settings(embedder="navec"))

    assert isinstance(embedder, NavecEmbedder)
    assert embedder.id == "navec:news_v1_1B_250K_300d_100q-sif-ngram84:v1:384"
    assert embedder.dim == 384


def test_missing_natasha_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> importlib.metadata.Distribution:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)

    with pytest.raises(ConfigError, match="natasha"):
        shipped_vectors_path()


async def test_index_and_search_by_meaning(
    settings: Settings, source_conn: asyncpg.Connection
) -> None:
    await source_conn.execute("INSERT INTO src_cabinets (id) VALUES (1)")
    await source_conn.executemany(
        "INSERT INTO src_docs (cabinet_id, id, title, body) VALUES (1, $1, $2, $3)",
        [
            ("shoes", "Кроссовки беговые", "Лёгкая подошва хорошо амортизирует при беге."),
            ("cream", "Крем для лица", "Увлажняет сухую кожу, быстро впитывается."),
            ("phone", "Смартфон", "Экран AMOLED, быстрая зарядка."),
        ],
    )
    # Without synonyms, so that only the vectors can find the shoes (the keyword side would,
    # through "обувь → кроссовки": tests/indexing/test_synonyms.py)
    plain = settings.model_copy(update={"embedder": "navec", "search_synonyms": False})
    async with open_runtime(plain) as rt:
        report = await rt.indexer.index_cabinet(1)
        hits = await rt.indexer.search(1, "обувь для пробежки", k=3)
        state = await rt.store.cabinet_state(1)

    assert report.chunks_embedded == 3
    assert state is not None and state.embedder_id == NavecEmbedder().id
    assert hits[0].doc_id == "shoes" and hits[0].text_rank is None
