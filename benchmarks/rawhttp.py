"""A minimal keep-alive HTTP/1.1 client on asyncio streams, for load generators.

The benchmarks' load generator shares the machine's 2 cores with the server: httpx costs
~1.7 ms of client CPU a request (measured against this client, issue 12), which the server
then does not get, and tops out at a few hundred requests/s on a slow core. This is just
enough of the protocol for our own API: one connection, requests in turn, `Content-Length`
bodies (no chunked encoding).
"""

from __future__ import annotations

import asyncio

__all__ = ["RawHttp"]


class RawHttp:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:`port`, sending `key` as X-API-Key."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.head = f"Host: 127.0.0.1\r\nX-API-Key: {key}\r\n"
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, json_body: bytes = b"") -> tuple[int, bytes]:
        """Status and body of the response to `method` `path` with `json_body` (JSON)."""
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        kind = "Content-Type: application/json\r\n" if json_body else ""
        length = f"Content-Length: {len(json_body)}\r\n\r\n"
        writer.write(f"{method} {path} HTTP/1.1\r\n{self.head}{kind}{length}".encode() + json_body)
        await writer.drain()
        answer = await reader.readuntil(b"\r\n\r\n")
        size = 0
        for line in answer.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                size = int(value)
        return int(answer.split(b" ", 2)[1]), await reader.readexactly(size)

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None
