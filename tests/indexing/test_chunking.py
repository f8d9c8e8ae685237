"""split_text: size limits, boundaries, overlap (no database)."""

from __future__ import annotations

import itertools
import re

import pytest

from rag_indexer_service.indexing.chunking import split_text

SENTENCE = "Кроссовки для бега по асфальту держат стопу."  # 44 characters


def _text(paragraphs: int, sentences: int) -> str:
    return "\n\n".join(
        " ".join(f"Абзац {p}, предложение {s}: {SENTENCE}" for s in range(sentences))
        for p in range(paragraphs)
    )


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _words(text: str) -> set[str]:
    return set(re.split(r"\s+", text))


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t"])
def test_blank_text_has_no_chunks(text: str) -> None:
    assert split_text(text, size=100, overlap=20) == []


def test_short_text_is_one_stripped_chunk() -> None:
    assert split_text("  Одна строка.\n\nИ вторая.  ", size=100, overlap=20) == [
        "Одна строка.\n\nИ вторая."
    ]


def test_text_of_exactly_size_is_one_chunk() -> None:
    text = "а" * 50
    assert split_text(text, size=50, overlap=10) == [text]
    assert len(split_text(text + "б", size=50, overlap=10)) == 2


@pytest.mark.parametrize(("size", "overlap"), [(80, 0), (200, 40), (500, 120), (1000, 300)])
def test_every_chunk_fits_and_no_word_is_lost(size: int, overlap: int) -> None:
    text = _text(paragraphs=6, sentences=8)
    chunks = split_text(text, size=size, overlap=overlap)
    assert len(chunks) > 1
    assert all(0 < len(c) <= size for c in chunks)
    assert set().union(*(_words(c) for c in chunks)) == _words(text)


def test_chunks_start_and_end_on_word_boundaries() -> None:
    text = _text(paragraphs=4, sentences=10)
    words = _words(text)
    for chunk in split_text(text, size=150, overlap=60):
        assert chunk == chunk.strip()
        assert _words(chunk) <= words  # no word was cut in two


def test_paragraphs_that_fit_are_kept_whole() -> None:
    paragraphs = [f"Абзац {n}. {SENTENCE}" for n in range(6)]  # ~55 characters each
    chunks = split_text("\n\n".join(paragraphs), size=120, overlap=0)
    pieces = [line for chunk in chunks for line in chunk.split("\n")]
    assert pieces == paragraphs


def test_consecutive_chunks_share_their_overlap() -> None:
    text = _text(paragraphs=1, sentences=20)
    chunks = split_text(text, size=200, overlap=60)
    for previous, current in itertools.pairwise(chunks):
        shared = next(
            (
                n
                for n in range(min(len(previous), len(current)), 0, -1)
                if previous.endswith(current[:n])
            ),
            0,
        )
        assert 0 < shared <= 60, (previous, current)


def test_zero_overlap_repeats_nothing() -> None:
    text = _text(paragraphs=1, sentences=20)
    chunks = split_text(text, size=200, overlap=0)
    assert _squash(" ".join(chunks)) == _squash(text)


def test_a_token_longer_than_a_chunk_is_cut_into_pieces() -> None:
    text = f"начало {'x' * 250} конец"
    chunks = split_text(text, size=100, overlap=0)
    assert [len(c) for c in chunks] == [6, 100, 100, 56]
    assert "".join(chunks).replace(" ", "") == text.replace(" ", "")


def test_same_input_same_chunks() -> None:
    text = _text(paragraphs=5, sentences=7)
    assert split_text(text, size=300, overlap=80) == split_text(text, size=300, overlap=80)
