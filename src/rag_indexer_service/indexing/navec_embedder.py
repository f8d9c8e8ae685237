"""An offline semantic embedder on navec's Russian word vectors.

navec (`navec_news_v1_1B_250K_300d_100q`: GloVe, 250k words × 300 d, trained on 1B words of
Russian news, product-quantised to 26 MB) ships inside the `natasha` wheel; we locate the file
through the package metadata and read it with the small `navec` package, without importing
`natasha` itself (its pymorphy2 fails on Python 3.11).

A text's vector is two blocks, L2-normalised together:

* 300 d: the SIF-weighted sum of the vectors of its in-vocabulary words (Arora et al. 2017:
  weight a / (a + p(w)), p from the word counts navec ships), with the common component (the
  direction of the average text, estimated from the vocabulary itself) projected out;
  numbers (dates, prices, sizes) are left out: they move vectors without meaning;
* `NGRAM_DIM` d: signed feature hashing of the character trigrams of the words the vocabulary
  lacks (brands, article numbers, English), each such word weighted like a rare word.

Deterministic. The vectors load (2–5 s, ~150 MiB) once per process, on the first `embed`, in
a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import re
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from rag_indexer_service.errors import ConfigError
from rag_indexer_service.indexing.embedders import Vectors

__all__ = ["NAVEC_MODEL", "NGRAM_DIM", "NavecEmbedder", "shipped_vectors_path"]

NAVEC_MODEL: Final = "news_v1_1B_250K_300d_100q"
NGRAM_DIM: Final = 84
_SHIPPED_IN: Final = ("natasha", f"natasha/data/emb/navec_{NAVEC_MODEL}.tar")
_SIF_A: Final = 1e-4
_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
_NUMBER = re.compile(r"[\d-]+")
_CACHE_TOKENS: Final = 30_000  # distinct tokens kept (× 384 floats); then the cache restarts


def shipped_vectors_path() -> Path:
    """The navec tar inside the installed `natasha` wheel (not imported, only located)."""
    package, member = _SHIPPED_IN
    try:
        path = Path(str(importlib.metadata.distribution(package).locate_file(member)))
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            f"RAG_EMBEDDER=navec needs the {package!r} package, which ships the vectors "
            "(pip install natasha), or set RAG_EMBEDDER=hashing"
        ) from None
    if not path.is_file():
        raise ConfigError(f"RAG_EMBEDDER=navec: {path} is missing from the {package} install")
    return path


@dataclass(frozen=True, slots=True)
class _Vectors:
    """What the embedder keeps of navec: ids, SIF weights and the quantised vectors."""

    word_ids: dict[str, int]
    sif: npt.NDArray[np.float32]  # per word id
    indexes: npt.NDArray[np.uint8]  # (words, subspaces): centroid of each subvector
    codes: npt.NDArray[np.float32]  # (subspaces, centroids, subdim)
    common: npt.NDArray[np.float32]  # unit vector removed from every text vector
    oov_scale: float  # norm an out-of-vocabulary word's n-gram vector gets

    @property
    def dim(self) -> int:
        return int(self.codes.shape[0] * self.codes.shape[2])

    def gather(self, ids: npt.NDArray[np.intp]) -> npt.NDArray[np.float32]:
        subspaces = np.arange(self.codes.shape[0])
        rows: npt.NDArray[np.float32] = self.codes[subspaces, self.indexes[ids]]
        return rows.reshape(len(ids), self.dim)


@functools.cache
def _load(path: Path) -> _Vectors:
    """The vectors, loaded once per process (read-only, shared by every embedder)."""
    from navec import Navec  # type: ignore[import-untyped]

    navec = Navec.load(str(path))
    vocab, pq = navec.vocab, navec.pq
    counts = np.asarray(vocab.counts, dtype=np.float64)
    p = counts / counts.sum()
    sif = np.where(counts > 0, _SIF_A / (_SIF_A + p), 0.0).astype(np.float32)
    vectors = _Vectors(
        word_ids=vocab.word_ids,
        sif=sif,
        indexes=pq.indexes,
        codes=pq.codes.astype(np.float32),
        common=np.zeros(pq.dim, dtype=np.float32),
        oov_scale=float(np.median(pq.norm)),
    )
    # The expected SIF vector of a text drawn from the corpus' unigram distribution.
    mean = np.zeros(vectors.dim, dtype=np.float64)
    step = 25_000
    for start in range(0, len(counts), step):
        ids = np.arange(start, min(start + step, len(counts)))
        mean += (p[ids] * sif[ids]) @ vectors.gather(ids)
    common = (mean / np.linalg.norm(mean)).astype(np.float32)
    return _Vectors(
        vectors.word_ids, sif, vectors.indexes, vectors.codes, common, vectors.oov_scale
    )


class NavecEmbedder:
    """SIF-averaged navec word vectors plus hashed n-grams of unknown words."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path  # None: the shipped vectors, located on the first `embed`
        self._lock = threading.Lock()
        # Each distinct token's weighted vector is computed once, into one row of `_table`.
        self._rows: dict[str, int | None] = {}  # token -> row; None: a number, left out
        self._table = np.zeros((0, self.dim), dtype=np.float32)
        self._used = 0  # rows of `_table` in use

    @property
    def id(self) -> str:
        return f"navec:{NAVEC_MODEL}-sif-ngram{NGRAM_DIM}:v1:{self.dim}"

    @property
    def dim(self) -> int:
        return 300 + NGRAM_DIM

    def _word_ids(self, vectors: _Vectors, token: str) -> list[int]:
        """Vocabulary ids for a token: itself, its ё→е spelling or its hyphen parts."""
        found = vectors.word_ids.get(token)
        if found is None and "ё" in token:
            found = vectors.word_ids.get(token.replace("ё", "е"))
        if found is not None:
            return [found]
        if "-" in token:
            return [i for part in token.split("-") for i in self._word_ids(vectors, part)]
        return []

    def _token_vector(self, vectors: _Vectors, token: str) -> npt.NDArray[np.float32]:
        out = np.zeros(self.dim, dtype=np.float32)
        ids = np.asarray(self._word_ids(vectors, token), dtype=np.intp)
        if ids.size:
            out[: vectors.dim] = vectors.sif[ids] @ vectors.gather(ids)
            return out
        marked = f"<{token}>"
        ngrams = out[vectors.dim :]
        for i in range(max(1, len(marked) - 2)):
            h = zlib.crc32(marked[i : i + 3].encode("utf-8"))
            ngrams[h % NGRAM_DIM] += -1.0 if (h >> 31) & 1 else 1.0
        ngrams *= vectors.oov_scale / max(float(np.linalg.norm(ngrams)), 1e-9)
        return out

    def _row_of(self, vectors: _Vectors, token: str) -> int | None:
        if _NUMBER.fullmatch(token):
            self._rows[token] = None
            return None
        row = self._used
        if row == len(self._table):
            grown = np.zeros((max(1024, 2 * row), self.dim), dtype=np.float32)
            grown[:row] = self._table
            self._table = grown
        self._table[row] = self._token_vector(vectors, token)
        self._used += 1
        self._rows[token] = row
        return row

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        if self._path is None:  # located once: a package metadata lookup costs ~0.3 ms
            self._path = shipped_vectors_path()
        vectors = _load(self._path)
        with self._lock:
            if self._used > _CACHE_TOKENS:
                self._rows.clear()
                self._used = 0
            rows = self._rows
            token_rows: list[int] = []
            per_text = np.zeros(len(texts), dtype=np.intp)
            for i, text in enumerate(texts):
                before = len(token_rows)
                for token in _WORD.findall(text.lower()):
                    row = rows[token] if token in rows else self._row_of(vectors, token)
                    if row is not None:
                        token_rows.append(row)
                per_text[i] = len(token_rows) - before
            out = np.zeros((len(texts), self.dim), dtype=np.float32)
            filled = per_text > 0
            if token_rows:
                starts = np.cumsum(per_text) - per_text
                picked = self._table[np.asarray(token_rows, dtype=np.intp)]
                out[filled] = np.add.reduceat(picked, starts[filled], axis=0)
        dense = out[:, : vectors.dim]
        dense -= np.outer(dense @ vectors.common, vectors.common)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        normalised: Vectors = out / norms
        return normalised

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if len(texts) < 16 and _load.cache_info().currsize:
            return self.embed_sync(texts)
        return await asyncio.to_thread(self.embed_sync, texts)
