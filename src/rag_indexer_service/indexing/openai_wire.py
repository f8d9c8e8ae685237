"""What OpenAI-style servers send back: error texts and codes, vectors in either encoding."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import numpy as np

from rag_indexer_service.errors import EmbeddingRejected
from rag_indexer_service.indexing.embedders import Vectors

__all__ = ["HINTS", "decode_vector", "error_code", "most_telling", "server_message"]

HINTS = {
    400: "check RAG_OPENAI_MODEL, RAG_OPENAI_DIMENSIONS and RAG_EMBEDDING_MAX_TOKENS_PER_INPUT",
    401: "check RAG_OPENAI_API_KEY",
    403: "the key may not use this model or endpoint",
    404: "check RAG_OPENAI_BASE_URL and RAG_OPENAI_MODEL",
    413: "lower RAG_EMBED_BATCH_SIZE or RAG_EMBEDDING_MAX_TOKENS_PER_REQUEST",
    422: "check RAG_OPENAI_MODEL, RAG_OPENAI_DIMENSIONS and RAG_EMBEDDING_MAX_TOKENS_PER_INPUT",
}


def server_message(response: httpx.Response) -> str:
    """The error text an OpenAI-style server put in its body (trimmed), or the status phrase."""
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        for value in (error, payload.get("message"), payload.get("detail")):
            if value:
                return str(value)[:300]
    return str(payload)[:300]


def error_code(response: httpx.Response) -> str | None:
    try:
        payload = response.json()
    except ValueError:
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        return None if code is None else str(code)
    return None


def decode_vector(vector: Any) -> Vectors:
    """A list of floats, or base64 of little-endian float32 (servers that ignore the format)."""
    if isinstance(vector, str):
        return np.frombuffer(base64.b64decode(vector), dtype="<f4").astype(np.float32)
    return np.asarray(vector, dtype=np.float32).reshape(-1)


def most_telling(errors: BaseExceptionGroup[BaseException]) -> BaseException:
    """From concurrent batch failures: a permanent error first, else the first one."""
    leaves: list[BaseException] = []

    def walk(group: BaseExceptionGroup[BaseException]) -> None:
        for exc in group.exceptions:
            if isinstance(exc, BaseExceptionGroup):
                walk(exc)
            else:
                leaves.append(exc)

    walk(errors)
    for exc in leaves:
        if isinstance(exc, EmbeddingRejected):
            return exc
    return leaves[0]
