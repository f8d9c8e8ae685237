"""Turning texts into vectors.

`Embedder` is the protocol the indexer needs. `HashingEmbedder` is the offline default: the
feature-hashing trick over word unigrams, word bigrams and character trigrams, signed, with
sublinear term frequency, L2-normalised. No model, no network, deterministic across processes
and machines, and good enough that texts sharing words and word-pieces land close together
(Russian inflections share trigrams).

`NavecEmbedder` (`navec_embedder.py`) averages offline Russian word vectors;
`OpenAIEmbedder` (`openai_embedder.py`) calls an OpenAI-compatible HTTP API. `build_embedder`
picks one from settings; `close_embedder` releases what an embedder holds (HTTP client, Redis).
"""

from __future__ import annotations

import asyncio
import re
import zlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from rag_indexer_service.config import Settings
from rag_indexer_service.errors import ConfigError

__all__ = ["Embedder", "HashingEmbedder", "Vectors", "build_embedder", "close_embedder"]

Vectors = npt.NDArray[np.float32]

_WORD = re.compile(r"\w+", re.UNICODE)
_MASK32 = np.uint64(0xFFFFFFFF)
# Odd 32-bit multipliers for the rolling character-trigram hash.
_P1, _P2, _P3 = np.uint64(0x9E3779B1), np.uint64(0x85EBCA77), np.uint64(0xC2B2AE3D)
_SALT = np.uint64(0x5BD1E995)


class Embedder(Protocol):
    @property
    def id(self) -> str:
        """`provider:model:dim`; an index built by one embedder is only searched by the same."""
        ...

    @property
    def dim(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """One L2-normalised row per text, shape (len(texts), dim)."""
        ...


class HashingEmbedder:
    """Deterministic feature-hashing embedder (see module docstring)."""

    def __init__(self, dim: int = 384) -> None:
        if dim < 8:
            raise ConfigError("RAG_EMBEDDING_DIM: must be at least 8")
        self._dim = dim
        self._word_hashes: dict[str, int] = {}

    @property
    def id(self) -> str:
        return f"hashing:v1:{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _word_hash(self, word: str) -> int:
        cached = self._word_hashes.get(word)
        if cached is None:
            cached = zlib.crc32(word.encode("utf-8"))
            if len(self._word_hashes) < 500_000:
                self._word_hashes[word] = cached
        return cached

    def _features(self, text: str) -> npt.NDArray[np.uint64]:
        lowered = text.lower()
        words = [self._word_hash(w) for w in _WORD.findall(lowered)]
        word_arr = np.asarray(words, dtype=np.uint64)
        bigrams = (word_arr[:-1] * _P1 + word_arr[1:] * _P2) & _MASK32
        codes = np.frombuffer(f" {lowered} ".encode("utf-32-le"), dtype=np.uint32)
        codes = codes.astype(np.uint64)
        trigrams = (codes[:-2] * _P1 + codes[1:-1] * _P2 + codes[2:] * _P3 + _SALT) & _MASK32
        return np.concatenate([word_arr, bigrams, trigrams])

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        dim = np.uint64(self._dim)
        for row, text in enumerate(texts):
            feats = self._features(text)
            if feats.size == 0:
                continue
            buckets = (feats % dim).astype(np.intp)
            signs = np.where((feats >> np.uint64(31)) & np.uint64(1), -1.0, 1.0)
            out[row] = np.bincount(buckets, weights=signs, minlength=self._dim)
        out = np.sign(out) * np.log1p(np.abs(out))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        normalised: Vectors = (out / norms).astype(np.float32)
        return normalised

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if len(texts) < 16:
            return self.embed_sync(texts)
        return await asyncio.to_thread(self.embed_sync, texts)


@runtime_checkable
class _Closable(Protocol):
    async def aclose(self) -> None: ...


def build_embedder(settings: Settings) -> Embedder:
    """The embedder `settings` asks for. Connects nothing: clients open on first use."""
    if settings.embedder == "openai":
        # Imported here: openai_embedder imports this module for `Vectors`.
        from rag_indexer_service.indexing.openai_embedder import OpenAIEmbedder

        return OpenAIEmbedder.from_settings(settings)
    if settings.embedder == "navec":
        from rag_indexer_service.indexing.navec_embedder import NavecEmbedder

        return NavecEmbedder()
    return HashingEmbedder(settings.embedding_dim)


async def close_embedder(embedder: Embedder) -> None:
    """Release the embedder's connections, if it holds any."""
    if isinstance(embedder, _Closable):
        await embedder.aclose()
