"""`LimitedHttpToolsProtocol`: uvicorn's httptools protocol with a bounded request head.

uvicorn reads a request head (request line and headers) of any size and at any pace. This
protocol refuses, in the API's one error shape, and closes the connection:

- a head larger than `HeadLimits.max_bytes` (431; counted as bytes arrive, so a huge header
  is never held whole),
- more than `HeadLimits.max_headers` header lines (431),
- a head that has not arrived within `HeadLimits.timeout_s` of its first byte (408),
- a head the parser cannot read (400, where uvicorn answers in plain text).

Closing is lingering, as nginx's `lingering_close`: the write side is shut first and whatever
the client still sends is read and dropped for up to `HeadLimits.linger_s` and 1 MiB, so a
client still sending a body it was refused gets the answer instead of a reset that discards
it, while one that streams on is cut off after that much.

Bodies are bounded by `api.guard.RequestGuard`, after authentication.

    uvicorn.run(..., http=limited_protocol(HeadLimits(timeout_s=10)))
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from dataclasses import dataclass
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HeadLimits", "LimitedHttpToolsProtocol", "limited_protocol", "raw_error_response"]

log = logging.getLogger(__name__)

_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


@dataclass(frozen=True, slots=True)
class HeadLimits:
    max_bytes: int = 32 * 1024
    max_headers: int = 100
    timeout_s: float = 10.0
    linger_s: float = 2.0


def raw_error_response(status: int, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 response in the API's error shape that closes the connection."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


_LINGER_MAX_BYTES = 1 << 20


class _LingeringTransport:
    """The connection's transport, whose `close()` half-closes and closes `linger_s` later
    (or when the client closes its side); everything else is the transport's own."""

    def __init__(self, transport: asyncio.Transport, linger_s: float) -> None:
        self._transport = transport
        self._linger_s = linger_s
        self.lingering = False
        self._dropped = 0
        self._timer: asyncio.TimerHandle | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        transport = self._transport
        if self.lingering or transport.is_closing():
            return
        self.lingering = True
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()  # after the answer still buffered
        self._timer = asyncio.get_running_loop().call_later(self._linger_s, transport.close)

    def drop(self, data: bytes) -> None:
        self._dropped += len(data)
        if self._dropped > _LINGER_MAX_BYTES:
            self.closed()

    def closed(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport.close()


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; the answer is already chosen."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, limits: HeadLimits = HeadLimits(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refusal: bytes | None = None
        self._closed_by_us = False
        self._lingering: _LingeringTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._lingering = _LingeringTransport(
            cast(asyncio.Transport, transport), self.limits.linger_s
        )
        super().connection_made(cast(asyncio.Transport, self._lingering))

    def eof_received(self) -> None:
        if self._lingering is not None and self._lingering.lingering:
            self._lingering.closed()
            return
        super().eof_received()

    # -- counting --------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._lingering is not None and self._lingering.lingering:
            self._lingering.drop(data)
            return
        if self._closed_by_us:
            return
        if self._in_head:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.limits.timeout_s, self._head_late)
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.limits.max_bytes:
            self._refuse(431, "header_too_large", self._too_large())

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refusal = raw_error_response(
                431,
                "too_many_headers",
                f"the request has more than {self.limits.max_headers} header fields",
            )
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._end_head()
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self.limits.max_bytes:
            self._refusal = raw_error_response(431, "header_too_large", self._too_large())
            raise _Refused
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # the next pipelined request's head starts here
        self._head_bytes = 0

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_head()
        if self._lingering is not None:
            self._lingering.closed()
        super().connection_lost(exc)

    # -- answering -------------------------------------------------------------------------
    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to anything the parser rejects, including our `_Refused`.
        refusal = self._refusal or raw_error_response(
            400, "bad_request", "the request is not valid HTTP/1.1"
        )
        self._write_and_close(refusal)

    def _too_large(self) -> str:
        return f"the request line and headers exceed {self.limits.max_bytes} bytes"

    def _head_late(self) -> None:
        self._head_timer = None
        if self._in_head and not self._closed_by_us:
            message = f"the request head did not arrive within {self.limits.timeout_s:g} s"
            self._refuse(408, "request_timeout", message)

    def _refuse(self, status: int, code: str, message: str) -> None:
        log.warning("refused a request from %s: %s", self.client, message)
        self._write_and_close(raw_error_response(status, code, message))

    def _write_and_close(self, response: bytes) -> None:
        if self._closed_by_us:
            return
        self._closed_by_us = True
        self._end_head()
        self.transport.write(response)
        self.transport.close()

    def _end_head(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None


def limited_protocol(limits: HeadLimits) -> Any:
    """The `http=` argument of `uvicorn.run`/`uvicorn.Config` (picklable for `--workers`)."""
    return functools.partial(LimitedHttpToolsProtocol, limits=limits)
