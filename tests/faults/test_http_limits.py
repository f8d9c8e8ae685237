"""Hostile HTTP against a real `rag-indexer api` process: oversized or slow heads and bodies
are refused in the one error shape before they are read, malformed bodies are 422s, and the
bulk trigger takes run ids only for the runs it actually inserts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import asyncpg
import httpx
import psutil

from rag_indexer_service.db.engine import asyncpg_dsn
from tests.api.conftest import API_KEY
from tests.faults.conftest import READ_TIMEOUT_S, Served

SEARCH = "/api/v1/rag/cabinets/1/search"
MAX_HEAD_BYTES = 32 * 1024
MAX_BODY_BYTES = 256 * 1024


async def exchange(
    served: Served, head: bytes, body: bytes = b"", *, wait_s: float = 0
) -> tuple[int, dict[str, str], Any]:
    """Send raw bytes, then read one response to the end (the server closes after it)."""
    reader, writer = await asyncio.open_connection(served.host, served.port)
    try:
        writer.write(head + body)
        await writer.drain()
        if wait_s:
            await asyncio.sleep(wait_s)
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head_part, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *lines = head_part.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(payload)


def request_head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: api.test", *headers, "", ""]
    return "\r\n".join(lines).encode()


def error_code(body: Any) -> str:
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return str(body["error"]["code"])


async def test_an_oversized_head_is_refused_431_without_being_read(served_api: Served) -> None:
    status, headers, body = await exchange(
        served_api, request_head("GET", "/healthz", "X-Big: " + "a" * (MAX_HEAD_BYTES + 100))
    )
    assert (status, error_code(body)) == (431, "header_too_large")
    assert headers["connection"] == "close"

    many = [f"X-H{n}: v" for n in range(101)]
    status, _, body = await exchange(served_api, request_head("GET", "/healthz", *many))
    assert (status, error_code(body)) == (431, "too_many_headers")

    # Given a client streaming a 64 MB header, when the server hangs up on it,
    # then it has read little of it and other clients are served meanwhile.
    rss_before = psutil.Process(served_api.proc.pid).memory_info().rss
    _, writer = await asyncio.open_connection(served_api.host, served_api.port)
    sent = 0
    chunk = b"a" * 65536
    writer.write(b"GET /healthz HTTP/1.1\r\nX-Big: ")
    try:
        while sent < 64 * 2**20:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
    except ConnectionError:
        pass
    finally:
        writer.close()
    async with httpx.AsyncClient(base_url=served_api.base_url, timeout=5) as client:
        started = time.perf_counter()
        assert (await client.get("/healthz")).status_code == 200
        healthz_s = time.perf_counter() - started
    assert sent < 16 * 2**20
    assert psutil.Process(served_api.proc.pid).memory_info().rss - rss_before < 20 * 2**20
    assert healthz_s < 1.0


async def test_a_head_that_trickles_in_is_cut_off_408(served_api: Served) -> None:
    reader, writer = await asyncio.open_connection(served_api.host, served_api.port)
    started = time.perf_counter()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: a")
    reading = asyncio.create_task(reader.read())
    for _ in range(30):  # a byte every 0.1 s keeps the connection busy, never complete
        await asyncio.sleep(0.1)
        if reading.done():
            break
        writer.write(b"a")
    raw = await asyncio.wait_for(reading, timeout=5)
    writer.close()

    assert raw.startswith(b"HTTP/1.1 408 ")
    assert error_code(json.loads(raw.partition(b"\r\n\r\n")[2])) == "request_timeout"
    assert time.perf_counter() - started < READ_TIMEOUT_S + 1.5


async def test_a_body_is_not_read_before_the_key_is_checked(served_api: Served) -> None:
    # Content-Length of 100 MB, no body sent: the answer comes at once, the body unread.
    huge = ("Content-Type: application/json", "Content-Length: 100000000")
    status, headers, body = await exchange(served_api, request_head("POST", SEARCH, *huge))
    assert (status, error_code(body)) == (401, "unauthorized")
    assert headers["connection"] == "close"

    keyed = (f"X-API-Key: {API_KEY}", *huge)
    status, _, body = await exchange(served_api, request_head("POST", SEARCH, *keyed))
    assert (status, error_code(body)) == (413, "body_too_large")


async def test_a_chunked_body_past_the_limit_is_413_and_a_slow_one_408(served_api: Served) -> None:
    chunk = b"a" * 65536
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5)) + b"0\r\n\r\n"
    head = request_head(
        "POST",
        SEARCH,
        f"X-API-Key: {API_KEY}",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
    )
    status, _, body = await exchange(served_api, head, chunked)
    assert (status, error_code(body)) == (413, "body_too_large")
    assert 5 * len(chunk) > MAX_BODY_BYTES

    slow = request_head(
        "POST",
        SEARCH,
        f"X-API-Key: {API_KEY}",
        "Content-Type: application/json",
        "Content-Length: 100",
    )
    started = time.perf_counter()
    status, _, body = await exchange(served_api, slow, b'{"query": ')
    assert (status, error_code(body)) == (408, "request_timeout")
    assert time.perf_counter() - started < READ_TIMEOUT_S + 1.5


async def trickle_until_closed(served: Served, head: bytes, *, for_s: float) -> bytes:
    """Send `head`, then a byte of body every 0.1 s until the server closes the connection
    (or `for_s` has passed); what the server answered."""
    reader, writer = await asyncio.open_connection(served.host, served.port)
    writer.write(head)
    reading = asyncio.create_task(reader.read())
    deadline = time.perf_counter() + for_s
    try:
        while not reading.done() and time.perf_counter() < deadline:
            with contextlib.suppress(ConnectionError):
                writer.write(b"1\r\na\r\n")
                await writer.drain()
            await asyncio.sleep(0.1)
        assert reading.done(), f"the connection is still open after {for_s:g} s"
        return reading.result()
    finally:
        reading.cancel()
        writer.close()


async def test_a_body_no_route_reads_is_not_drained_the_connection_closes(
    served_api: Served,
) -> None:
    # A body announced to a route that takes none (a 405, a 404) and trickled in forever:
    # the server answers and hangs up instead of reading on at the client's pace (which
    # keeps the connection from ever being idle, so no keep-alive timeout ends it).
    for path, expected in (("/healthz", 405), ("/no/such/page", 404)):
        for framing in ("Transfer-Encoding: chunked", "Content-Length: 100000"):
            head = request_head("POST", path, "Content-Type: application/json", framing)
            raw = await trickle_until_closed(served_api, head, for_s=8 * READ_TIMEOUT_S)
            status_line, _, rest = raw.partition(b"\r\n")
            assert status_line.split()[1] == str(expected).encode(), (path, framing, raw)
            assert b"\r\nconnection: close\r\n" in rest.lower(), (path, framing, raw)


async def test_malformed_json_and_a_nul_in_a_query_are_precise_422s(served_api: Served) -> None:
    async with httpx.AsyncClient(
        base_url=served_api.base_url, headers={"X-API-Key": API_KEY}, timeout=5
    ) as client:
        not_utf8 = await client.post(
            SEARCH, content=b'{"query": "\xff\xfe"}', headers={"Content-Type": "application/json"}
        )
        nul = await client.post(SEARCH, json={"query": "кроссовки\u0000"})

    assert not_utf8.status_code == 422
    assert not_utf8.json()["error"] == {
        "code": "validation_error",
        "message": "the request body is not valid JSON",
    }
    assert nul.status_code == 422
    assert nul.json()["error"]["message"] == (
        "body field query must not contain NUL characters (\\u0000)"
    )


async def test_a_query_of_letters_without_a_unicode_name_is_searched_not_a_500(
    served_api: Served,
) -> None:
    # Tangut ideographs (U+17000...) are letters that `unicodedata.name()` cannot name, which
    # the morphology's analyser asked about: schemathesis found the 500.
    async with httpx.AsyncClient(
        base_url=served_api.base_url, headers={"X-API-Key": API_KEY}, timeout=60
    ) as client:  # the first search of a process loads the embedder and the dictionary
        found = await client.post(
            "/api/v1/rag/cabinets/404/search", json={"query": "кроссовки \U000176f9\U00018d08"}
        )

    assert (found.status_code, error_code(found.json())) == (404, "cabinet_not_found")


CABINETS = 200


async def test_a_bulk_trigger_with_nothing_new_burns_no_run_ids(served_api: Served) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(served_api.database_url))
    try:
        await conn.execute(
            "INSERT INTO src_cabinets (id) SELECT g FROM generate_series(1, $1) AS g", CABINETS
        )
        async with httpx.AsyncClient(
            base_url=served_api.base_url, headers={"X-API-Key": API_KEY}, timeout=30
        ) as client:
            first = (await client.post("/api/v1/rag/index")).json()
            again = [(await client.post("/api/v1/rag/index")).json() for _ in range(3)]
            top = await conn.fetchval("SELECT max(id) FROM rag_runs")
            await conn.execute("INSERT INTO src_cabinets (id) VALUES ($1)", CABINETS + 1)
            single = (await client.post(f"/api/v1/rag/index/{CABINETS + 1}")).json()
    finally:
        await conn.close()

    assert (first["enqueued"], first["already_active"]) == (CABINETS, 0)
    assert [(a["enqueued"], a["already_active"]) for a in again] == [(0, CABINETS)] * 3
    assert single["run_id"] == top + 1
