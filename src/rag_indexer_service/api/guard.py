"""`RequestGuard`: authenticate before any body is read, then bound the body's size and time.

FastAPI reads and parses a route's body before it runs the route's dependencies, so the
API-key check of `require_api_key` alone would let a caller without a key make the server
read a body. This pure ASGI middleware answers first, in the one error shape, and closes the
connection (the unread body is never drained):

- `/api/v1/...` without an accepted key: 401;
- a `Content-Length` above `BodyLimits.max_bytes`: 413 at once; a chunked body that grows
  past it: 413 when it does;
- a body that has not fully arrived `BodyLimits.timeout_s` after the head: 408;
- a response given before the request's body was read whole (a 404, a 405, a route that
  takes no body) closes the connection: the server would otherwise drain that body, of any
  size and at any pace, to read the next request.

The request head is bounded by the server protocol (`api.protocol`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag_indexer_service.api.auth import ApiKeyAuth, presented_key
from rag_indexer_service.api.errors import ApiError, error_response
from rag_indexer_service.api.views import API_PREFIX

__all__ = ["BodyLimits", "BodyTooLarge", "RequestGuard"]

_CLOSE = {"Connection": "close"}
_CLOSE_HEADER = (b"connection", b"close")


@dataclass(slots=True)
class _Body:
    announced: bool
    """The head announced a body (a non-zero Content-Length or a Transfer-Encoding)."""
    complete: bool = False
    """The application has received all of it."""


@dataclass(frozen=True, slots=True)
class BodyLimits:
    max_bytes: int = 256 * 1024
    timeout_s: float = 10.0


class BodyTooLarge(ApiError):
    status_code = 413
    code = "body_too_large"


def _too_large(limits: BodyLimits) -> str:
    return f"the request body is larger than {limits.max_bytes} bytes"


class RequestGuard:
    def __init__(self, app: ASGIApp, *, auth: ApiKeyAuth, limits: BodyLimits) -> None:
        self.app = app
        self.auth = auth
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            if str(scope["path"]).startswith(API_PREFIX + "/"):
                self.auth.check(presented_key(headers))
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > self.limits.max_bytes:
                raise BodyTooLarge(_too_large(self.limits))
        except ApiError as refused:
            response = error_response(
                refused.status_code, refused.code, refused.message, {**refused.headers, **_CLOSE}
            )
            await response(scope, receive, send)
            return
        body = _Body(announced="transfer-encoding" in headers or length.strip("0") != "")
        await self.app(scope, self._bounded(receive, body), self._closing(send, body))

    @staticmethod
    def _closing(send: Send, body: _Body) -> Send:
        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and body.announced and not body.complete:
                kept = [h for h in message.get("headers", ()) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*kept, _CLOSE_HEADER]}
            await send(message)

        return closing_send

    def _bounded(self, receive: Receive, body: _Body) -> Receive:
        limits = self.limits
        deadline = asyncio.get_running_loop().time() + limits.timeout_s
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            if body.complete:  # past the body: waiting for a disconnect is not bounded
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(
                    408,
                    f"the request body did not arrive within {limits.timeout_s:g} s",
                    headers=_CLOSE,
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body.complete = not message.get("more_body", False)
                if received > limits.max_bytes:
                    raise HTTPException(413, _too_large(limits), headers=_CLOSE)
            else:
                body.complete = True
            return message

        return bounded_receive
