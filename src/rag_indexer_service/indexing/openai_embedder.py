"""`OpenAIEmbedder`: vectors from any server speaking the OpenAI embeddings API.

`POST {base}/embeddings` with `{"model", "input": [...], "encoding_format": "float"}` (plus
`dimensions` when a reduced size is asked for): OpenAI, LiteLLM and other gateways, vLLM,
Ollama, TEI.

- Inputs are deduplicated, truncated to the per-input token limit (counted, never sent to
  fail) and batched by count and by estimated tokens; the batches of one call run
  concurrently, at most `concurrency` requests in flight per process.
- Every request first takes its share of the global rate limit (`ratelimit.py`).
- 429, 5xx, timeouts and connection errors are retried inside the run, with jittered
  exponential backoff up to a cap. A `Retry-After` is the account's limit, not the request's:
  it pauses the shared limiter, so every slot of every process waits until it has passed.
  When the attempts run out, or the server asks for a longer wait than we accept, the call
  raises `EmbeddingUnavailable` (transient: the worker retries the whole run later, with its
  own longer backoff).
- 400/401/403/404/413/422, an exhausted quota, and vectors of the wrong count or size raise
  `EmbeddingRejected`: permanent, with the server's reason, never retried.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from rag_indexer_service import __version__
from rag_indexer_service.config import OPENAI_NATIVE_DIMS, Settings
from rag_indexer_service.errors import EmbeddingRejected, EmbeddingUnavailable
from rag_indexer_service.indexing.embedders import Vectors
from rag_indexer_service.indexing.openai_wire import (
    HINTS,
    decode_vector,
    error_code,
    most_telling,
    server_message,
)
from rag_indexer_service.indexing.ratelimit import (
    LocalRateLimiter,
    RateLimiter,
    RateLimits,
    build_rate_limiter,
)
from rag_indexer_service.indexing.retrying import TRANSIENT_STATUSES, backoff_s, retry_after_s
from rag_indexer_service.indexing.tokens import estimate_tokens, plan_batches, truncate_to_tokens
from rag_indexer_service.indexing.usage import EmbeddingUsage, current_usage

__all__ = ["ClientFactory", "OpenAIEmbedder", "OpenAIOptions", "default_client"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OpenAIOptions:
    base_url: str
    api_key: str = field(repr=False)
    model: str = "text-embedding-3-small"
    dim: int = 1536
    send_dimensions: bool = False
    max_inputs: int = 256
    max_tokens_per_input: int = 8191
    max_tokens_per_request: int = 100_000
    concurrency: int = 4
    timeout_s: float = 60.0
    max_attempts: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 120.0

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIOptions:
        native = OPENAI_NATIVE_DIMS.get(settings.openai_model)
        if settings.openai_dimensions is not None:
            dim, send = settings.openai_dimensions, settings.openai_dimensions != native
        else:
            dim, send = native or settings.embedding_dim, False
        # One request never needs more than the whole token budget of a rate window.
        window = RateLimits.per_minute(
            None, settings.embedding_tpm, window_s=settings.embedding_rate_window_s
        )
        per_request = settings.embedding_max_tokens_per_request
        if window.tokens is not None:
            per_request = min(per_request, window.tokens)
        key = settings.openai_api_key
        return cls(
            base_url=settings.openai_base_url,
            api_key="" if key is None else key.get_secret_value().strip(),
            model=settings.openai_model,
            dim=dim,
            send_dimensions=send,
            max_inputs=settings.embed_batch_size,
            max_tokens_per_input=min(settings.embedding_max_tokens_per_input, per_request),
            max_tokens_per_request=per_request,
            concurrency=settings.embedding_concurrency,
            timeout_s=settings.embedding_timeout_s,
            max_attempts=settings.embedding_max_attempts,
            backoff_base_s=settings.embedding_backoff_base_s,
            backoff_max_s=settings.embedding_backoff_max_s,
            max_retry_after_s=settings.embedding_max_retry_after_s,
        )


ClientFactory = Callable[[OpenAIOptions], httpx.AsyncClient]


def default_client(options: OpenAIOptions) -> httpx.AsyncClient:
    """The HTTP client of one embedder; called on the event loop that will use it."""
    return httpx.AsyncClient(
        base_url=options.base_url.rstrip("/") + "/",
        headers={
            "Authorization": f"Bearer {options.api_key}",
            "User-Agent": f"rag-indexer-service/{__version__}",
        },
        timeout=httpx.Timeout(options.timeout_s, connect=min(10.0, options.timeout_s)),
        limits=httpx.Limits(
            max_connections=options.concurrency, max_keepalive_connections=options.concurrency
        ),
    )


class _Retry(Exception):
    """One attempt failed transiently: `reason` for messages, `wait_s` if the server said."""

    def __init__(self, reason: str, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s


class OpenAIEmbedder:
    """Embeds through an OpenAI-compatible `/embeddings` endpoint (see module docstring)."""

    def __init__(
        self,
        options: OpenAIOptions,
        *,
        limiter: RateLimiter | None = None,
        client_factory: ClientFactory = default_client,
        rng: random.Random | None = None,
    ) -> None:
        self.options = options
        self._limiter: RateLimiter = limiter or LocalRateLimiter(RateLimits.unlimited())
        self._client_factory = client_factory
        self._client: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(options.concurrency)
        self._rng = rng

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIEmbedder:
        options = OpenAIOptions.from_settings(settings)
        # One budget per API account and model, shared by every process that uses them.
        scope = f"{options.base_url}|{options.model}|{options.api_key}"
        return cls(options, limiter=build_rate_limiter(settings, scope=scope))

    @property
    def id(self) -> str:
        return f"openai:{self.options.model}:{self.options.dim}"

    @property
    def dim(self) -> int:
        return self.options.dim

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await self._limiter.aclose()

    async def embed(self, texts: Sequence[str]) -> Vectors:
        usage = current_usage()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        unique: dict[str, int] = {}
        rows = [unique.setdefault(text, len(unique)) for text in texts]
        inputs, costs = [], []
        for text in unique:
            cut = truncate_to_tokens(text, self.options.max_tokens_per_input)
            if cut != text:
                usage.truncated += 1
            inputs.append(cut if cut.strip() else " ")
            costs.append(estimate_tokens(inputs[-1]))
        batches = plan_batches(
            costs,
            max_inputs=self.options.max_inputs,
            max_tokens=self.options.max_tokens_per_request,
        )
        out = np.empty((len(inputs), self.dim), dtype=np.float32)

        async def one(start: int, end: int) -> None:
            out[start:end] = await self._request(inputs[start:end], sum(costs[start:end]), usage)

        if len(batches) == 1:
            await one(*batches[0])
        else:
            try:
                async with asyncio.TaskGroup() as group:
                    for start, end in batches:
                        group.create_task(one(start, end))
            except BaseExceptionGroup as errors:
                raise most_telling(errors) from None
        return out[rows]

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self._client_factory(self.options)
        return self._client

    async def _request(self, inputs: list[str], tokens: int, usage: EmbeddingUsage) -> Vectors:
        body: dict[str, Any] = {
            "model": self.options.model,
            "input": inputs,
            "encoding_format": "float",
        }
        if self.options.send_dimensions:
            body["dimensions"] = self.options.dim
        client = self._http()  # before the limiter: admitted requests leave at once
        async with self._slots:
            attempt = 0
            while True:
                attempt += 1
                waited_s = await self._limiter.acquire(tokens)  # not `+= await`: slots race
                usage.throttled_s += waited_s
                usage.requests += 1
                try:
                    response = await self._send(client, body)
                    return self._attempt_result(response, len(inputs), tokens, usage)
                except _Retry as failed:
                    retry = failed
                delay = self._delay(retry, attempt)
                log.info(
                    "embedding request failed (%s); attempt %s of %s, next in %.2f s",
                    retry.reason,
                    attempt,
                    self.options.max_attempts,
                    delay,
                )
                usage.retries += 1
                if retry.wait_s is not None:
                    await self._limiter.pause(delay)  # the next acquire() waits, and counts it
                else:
                    usage.throttled_s += delay
                    await asyncio.sleep(delay)

    async def _send(self, client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
        try:
            return await client.post("embeddings", json=body)
        except httpx.TimeoutException:
            raise _Retry(f"timed out after {self.options.timeout_s:g} s") from None
        except httpx.TransportError as exc:
            raise _Retry(f"connection failed ({type(exc).__name__}: {exc})") from None

    def _delay(self, retry: _Retry, attempt: int) -> float:
        """Seconds before the next attempt, or raise `EmbeddingUnavailable` to stop trying."""
        where = f"embedding API {self.options.base_url}"
        if attempt >= self.options.max_attempts:
            raise EmbeddingUnavailable(
                f"{where}: {retry.reason} (gave up after {attempt} attempts)"
            )
        if retry.wait_s is not None and retry.wait_s > self.options.max_retry_after_s:
            raise EmbeddingUnavailable(
                f"{where}: {retry.reason}; it asks to retry after {retry.wait_s:g} s, more than "
                f"RAG_EMBEDDING_MAX_RETRY_AFTER_S={self.options.max_retry_after_s:g} s"
            )
        backoff = backoff_s(
            attempt,
            base_s=self.options.backoff_base_s,
            max_s=self.options.backoff_max_s,
            rng=self._rng,
        )
        return backoff if retry.wait_s is None else retry.wait_s

    def _attempt_result(
        self, response: httpx.Response, count: int, tokens: int, usage: EmbeddingUsage
    ) -> Vectors:
        status = response.status_code
        if status == 200:
            return self._parse(response, count, tokens, usage)
        reason = f"HTTP {status} {response.reason_phrase}: {server_message(response)}"
        if status == 429 and error_code(response) == "insufficient_quota":
            raise EmbeddingRejected(
                f"embedding API {self.options.base_url}: quota exhausted ({reason}); "
                "retrying cannot help until the account is topped up"
            )
        if status in TRANSIENT_STATUSES or status >= 500:
            raise _Retry(reason, retry_after_s(response.headers))
        hint = HINTS.get(status, "the request is not acceptable to this server")
        raise EmbeddingRejected(
            f"embedding API {self.options.base_url} rejected the request for model "
            f"{self.options.model!r}: {reason} ({hint})"
        )

    def _parse(
        self, response: httpx.Response, count: int, tokens: int, usage: EmbeddingUsage
    ) -> Vectors:
        try:
            payload = response.json()
            items = sorted(payload["data"], key=lambda item: int(item.get("index", 0)))
            raw = [item["embedding"] for item in items]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise _Retry("HTTP 200 with a body that is not an embeddings response") from None
        where = f"embedding API {self.options.base_url}, model {self.options.model!r}"
        if len(raw) != count:
            raise EmbeddingRejected(f"{where}: sent {count} inputs, got {len(raw)} vectors back")
        try:
            rows = [decode_vector(vector) for vector in raw]
        except (ValueError, TypeError):
            raise EmbeddingRejected(f"{where}: returned vectors that are not numbers") from None
        sizes = sorted({row.size for row in rows})
        if sizes != [self.dim]:
            shown = ", ".join(str(size) for size in sizes)
            raise EmbeddingRejected(
                f"{where}: returned vectors of {shown} dimensions, expected {self.dim} "
                "(set RAG_OPENAI_DIMENSIONS, or RAG_EMBEDDING_DIM to the model's native size)"
            )
        vectors = np.vstack(rows)
        if not np.isfinite(vectors).all():
            raise EmbeddingRejected(f"{where}: returned vectors with NaN or infinite values")
        meta = payload.get("usage") if isinstance(payload, dict) else None
        reported = meta.get("total_tokens") if isinstance(meta, dict) else None
        usage.tokens += reported if isinstance(reported, int) and reported > 0 else tokens
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        normalised: Vectors = (vectors / norms).astype(np.float32)
        return normalised
