"""`RequestObserver`: one structured log line and one latency observation per HTTP request.

A pure ASGI middleware (no per-request task or body buffering). The log record carries the
fields as attributes (`method`, `path`, `status`, `duration_ms`, `run_id`, `request_id`) for a
JSON formatter, and as `key=value` pairs in the message for the plain one. The request id is
the caller's `X-Request-ID` when it looks sane, else a new one; it is echoed in the response.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag_indexer_service.api.metrics import ApiMetrics

__all__ = ["ACCESS_LOGGER", "REQUEST_ID_HEADER", "RequestObserver"]

ACCESS_LOGGER = "rag_indexer_service.api.access"
REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_UNMATCHED = "<unmatched>"
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _SANE_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex[:16]


class RequestObserver:
    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self.log = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            duration_s = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or _UNMATCHED
            self.metrics.observe_request(scope["method"], route, status, duration_s)
            self._log(scope, state, route, status, duration_s, request_id)

    def _log(
        self,
        scope: Scope,
        state: dict[str, Any],
        route: str,
        status: int,
        duration_s: float,
        request_id: str,
    ) -> None:
        level = logging.DEBUG if route in _QUIET_ROUTES and status < 400 else logging.INFO
        if not self.log.isEnabledFor(level):
            return
        fields = {
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": round(duration_s * 1000, 2),
            "run_id": state.get("run_id"),
            "request_id": request_id,
        }
        self.log.log(
            level,
            "method=%s path=%s status=%s duration_ms=%s run_id=%s request_id=%s",
            *fields.values(),
            extra=fields,
        )
