"""`EmbeddingUsage`: what embedding cost during one run (requests, tokens, retries, waits).

The indexer opens a `metering()` block around a run; embedders add to `current_usage()`.
The value lives in a context variable, so concurrent runs on one event loop (one worker
process, several threads) each count their own, and the `Embedder` protocol stays
`embed(texts)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["EmbeddingUsage", "current_usage", "metering"]


@dataclass(slots=True)
class EmbeddingUsage:
    requests: int = 0
    """HTTP requests sent to the embedding API (retries included)."""
    tokens: int = 0
    """Tokens embedded: as reported by the API (`usage.total_tokens`), else estimated."""
    retries: int = 0
    """Requests that failed transiently and were sent again."""
    throttled_s: float = 0.0
    """Time spent waiting before sending: rate limiter, Retry-After and backoff."""
    truncated: int = 0
    """Inputs cut to the per-input token limit."""
    cache_hits: int = 0
    """Texts whose vector came from the embedding cache instead of the API."""


_current: ContextVar[EmbeddingUsage | None] = ContextVar("rag_embedding_usage", default=None)


@contextmanager
def metering() -> Iterator[EmbeddingUsage]:
    """Count the embedding usage of everything awaited inside the block."""
    usage = EmbeddingUsage()
    token = _current.set(usage)
    try:
        yield usage
    finally:
        _current.reset(token)


def current_usage() -> EmbeddingUsage:
    """The enclosing `metering()` block's usage, or a throwaway one outside any block."""
    usage = _current.get()
    return EmbeddingUsage() if usage is None else usage
