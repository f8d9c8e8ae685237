"""The console's login session: a signed cookie naming the API key it was opened with.

The cookie holds the key's SHA-256 (never the key) and a per-login CSRF token, signed with
itsdangerous under a secret derived from the accepted keys' digests: every API replica with the
same keys accepts it, and removing a key from the configuration ends its sessions. It is
HttpOnly, SameSite=Lax, Secure when served over HTTPS, and expires after `SESSION_MAX_AGE_S`.
State-changing forms carry the CSRF token; a POST whose token or Origin does not match fails.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from rag_indexer_service.api.auth import ApiKeyAuth

__all__ = ["COOKIE_NAME", "SESSION_MAX_AGE_S", "Session", "SessionCodec"]

COOKIE_NAME = "rag_console"
SESSION_MAX_AGE_S = 12 * 3600
_SALT = "rag-indexer console session"


@dataclass(frozen=True, slots=True)
class Session:
    key_digest: str
    csrf: str

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented, self.csrf)


class SessionCodec:
    def __init__(self, auth: ApiKeyAuth) -> None:
        self._auth = auth
        if auth.enabled:
            secret = hashlib.sha256(_SALT.encode() + b"".join(sorted(auth.digests))).hexdigest()
        else:  # no keys to derive from: sessions last as long as the process
            secret = secrets.token_hex(32)
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)

    def login(self, presented: str) -> Session | None:
        """A new session if the key is accepted (any key when auth is disabled)."""
        if self._auth.enabled and not self._auth.accepts(presented):
            return None
        digest = hashlib.sha256(presented.encode()).hexdigest()
        return Session(key_digest=digest, csrf=secrets.token_urlsafe(24))

    def read(self, request: Request) -> Session | None:
        raw = request.cookies.get(COOKIE_NAME)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=SESSION_MAX_AGE_S)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        digest, csrf = data.get("k"), data.get("c")
        if not isinstance(digest, str) or not isinstance(csrf, str):
            return None
        if self._auth.enabled and not self._key_still_accepted(digest):
            return None
        return Session(key_digest=digest, csrf=csrf)

    def _key_still_accepted(self, digest_hex: str) -> bool:
        try:
            given = bytes.fromhex(digest_hex)
        except ValueError:
            return False
        accepted = False
        for digest in self._auth.digests:
            accepted |= hmac.compare_digest(given, digest)
        return accepted

    def store(self, response: Response, request: Request, session: Session) -> None:
        response.set_cookie(
            COOKIE_NAME,
            self._serializer.dumps({"k": session.key_digest, "c": session.csrf}),
            max_age=SESSION_MAX_AGE_S,
            path="/ui",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )

    @staticmethod
    def clear(response: Response) -> None:
        response.delete_cookie(COOKIE_NAME, path="/ui", httponly=True, samesite="lax")
