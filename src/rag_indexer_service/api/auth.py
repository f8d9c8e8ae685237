"""API-key authentication: `X-API-Key: <key>` or `Authorization: Bearer <key>`.

Keys come from `RAG_API_KEYS` (comma separated) and `RAG_API_KEYS_FILE` (one per line). The
API keeps only their SHA-256 digests and compares the presented key's digest with every one of
them with `hmac.compare_digest`, so neither the timing nor the answer tells which keys exist.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from rag_indexer_service.api.errors import Unauthorized
from rag_indexer_service.config import Settings
from rag_indexer_service.errors import ConfigError

__all__ = [
    "API_KEY_HEADER",
    "MIN_KEY_CHARS",
    "ApiKeyAuth",
    "build_auth",
    "key_id",
    "load_api_keys",
    "presented_key",
    "require_api_key",
]

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
MIN_KEY_CHARS = 16
_KEY_CHARS = re.compile(r"[\x21-\x7e]+")  # visible ASCII: safe in any HTTP header
_CHALLENGE = 'Bearer realm="rag-indexer"'

_api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    scheme_name="ApiKey",
    description="One of the keys in RAG_API_KEYS / RAG_API_KEYS_FILE.",
)
_bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="Bearer",
    description="The same API key, sent as `Authorization: Bearer <key>`.",
)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def key_id(key: str) -> str:
    """A short, non-secret name of a key for logs (first 8 hex digits of its SHA-256)."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class ApiKeyAuth:
    """The accepted keys (as digests); `enabled=False` lets every request through."""

    digests: tuple[bytes, ...]
    enabled: bool = True

    def accepts(self, presented: str) -> bool:
        given = _digest(presented)
        accepted = False
        for digest in self.digests:  # no early exit: every key is compared every time
            accepted |= hmac.compare_digest(given, digest)
        return accepted

    def check(self, presented: str | None) -> str:
        """The presented key's id, or `Unauthorized`; with auth disabled, `anonymous`."""
        if not self.enabled:
            return "anonymous"
        if not presented:
            raise Unauthorized(
                f"missing API key: send {API_KEY_HEADER}: <key> or Authorization: Bearer <key>",
                headers={"WWW-Authenticate": _CHALLENGE},
            )
        if not self.accepts(presented):
            raise Unauthorized(
                "the API key is not accepted",
                headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
            )
        return key_id(presented)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request presents, read as the `require_api_key` security schemes read it."""
    api_key = headers.get(API_KEY_HEADER.lower())
    if api_key:
        return api_key
    scheme, _, credentials = (headers.get("authorization") or "").partition(" ")
    return credentials if scheme.lower() == "bearer" and credentials else None


def _check_key(key: str, where: str) -> str:
    if len(key) < MIN_KEY_CHARS:
        raise ConfigError(f"{where}: an API key is shorter than {MIN_KEY_CHARS} characters")
    if not _KEY_CHARS.fullmatch(key):
        raise ConfigError(f"{where}: an API key contains spaces or non-ASCII characters")
    return key


def load_api_keys(settings: Settings) -> tuple[str, ...]:
    """Every configured key, checked; raises a one-line `ConfigError`."""
    keys = [_check_key(key, "RAG_API_KEYS") for key in settings.api_keys]
    path = settings.api_keys_file
    if path is not None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"RAG_API_KEYS_FILE: cannot read {path}: {exc}") from None
        for line in lines:
            key = line.split("#", 1)[0].strip()
            if key:
                keys.append(_check_key(key, f"RAG_API_KEYS_FILE {path}"))
    return tuple(dict.fromkeys(keys))


def build_auth(settings: Settings) -> ApiKeyAuth:
    """The API's key check, or `ConfigError` when keys are missing and auth is not disabled."""
    keys = load_api_keys(settings)
    if settings.api_auth == "disabled":
        log.warning("RAG_API_AUTH=disabled: the HTTP API accepts requests without an API key")
        return ApiKeyAuth(digests=(), enabled=False)
    if not keys:
        raise ConfigError(
            "no API keys configured: set RAG_API_KEYS or RAG_API_KEYS_FILE "
            "(or RAG_API_AUTH=disabled to serve the API without authentication)"
        )
    return ApiKeyAuth(digests=tuple(_digest(key) for key in keys))


async def require_api_key(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key_scheme)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_scheme)],
) -> str:
    """The dependency guarding every `/api/v1` route; returns the caller's key id."""
    auth: ApiKeyAuth = request.app.state.auth
    presented = api_key or (bearer.credentials if bearer is not None else None)
    request.state.api_key_id = auth.check(presented)
    return str(request.state.api_key_id)
