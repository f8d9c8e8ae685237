"""`GET /api/v1/rag/cabinets`: every listed cabinet with its index state, filtered, sorted,
paged."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
from sqlalchemy import text

from rag_indexer_service.jobs.broker import QUEUE_MANUAL
from rag_indexer_service.jobs.execution import run_inline
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime
from tests.helpers import add_cabinet


async def ids(client: httpx.AsyncClient, **params: Any) -> list[int]:
    response = await client.get("/api/v1/rag/cabinets", params=params)
    assert response.status_code == 200, response.text
    return [c["cabinet_id"] for c in response.json()["cabinets"]]


async def given_five_cabinets(runtime: Runtime, source_conn: asyncpg.Connection) -> None:
    """1, 2, 12 indexed (1 two days ago), 3 failed, 13 never ran."""
    for cabinet_id in (1, 2, 3, 12, 13):
        await add_cabinet(source_conn, cabinet_id, docs=3)
    for cabinet_id in (1, 2, 12):
        run, _ = await run_inline(runtime, cabinet_id)
        assert run.status == "succeeded"
    ledger = Ledger(runtime.db.engine)
    run, _ = await ledger.request(3, "manual", QUEUE_MANUAL)
    assert await ledger.start_attempt(run.id, worker_id="w", stale_after_s=60) is not None
    await ledger.fail(run.id, "SourceQueryError: boom", retrying=False, worker_id="w")
    async with runtime.db.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE rag_cabinets SET last_success_at = now() - interval '2 days' "
                "WHERE cabinet_id = 1"
            )
        )


async def test_the_listing_joins_the_source_with_index_state(
    idle_client: httpx.AsyncClient, runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await given_five_cabinets(runtime, source_conn)

    response = await idle_client.get("/api/v1/rag/cabinets")

    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 5 and body["next_cursor"] is None
    by_id = {c["cabinet_id"]: c for c in body["cabinets"]}
    assert list(by_id) == [1, 2, 3, 12, 13]
    two = by_id[2]
    assert (two["indexed"], two["documents"], two["chunks"], two["failing"]) == (True, 3, 3, False)
    assert two["embedder_current"] is True and two["last_run"]["status"] == "succeeded"
    assert two["links"] == (await idle_client.get(two["links"]["self"])).json()["links"]
    assert by_id[1]["stale"] is True and by_id[1]["staleness_s"] > 86400
    assert by_id[3]["failing"] is True and by_id[3]["last_run"]["error"].startswith("Source")
    assert by_id[13]["indexed"] is False and by_id[13]["last_run"] is None


async def test_filters_prefix_and_staleness_order(
    idle_client: httpx.AsyncClient, runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await given_five_cabinets(runtime, source_conn)
    queued = (await idle_client.post("/api/v1/rag/index/13")).json()

    assert await ids(idle_client, status="failed") == [3]
    assert await ids(idle_client, status="never") == [3, 13]
    assert await ids(idle_client, status="stale") == [1]
    assert await ids(idle_client, q="1") == [1, 12, 13]
    assert await ids(idle_client, sort="staleness") == [3, 13, 1, 2, 12]
    listed = (await idle_client.get("/api/v1/rag/cabinets", params={"q": "13"})).json()
    assert listed["cabinets"][0]["active_run"]["run_id"] == queued["run_id"]


async def test_pages_follow_the_cursor_with_the_same_filters(
    idle_client: httpx.AsyncClient, runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await given_five_cabinets(runtime, source_conn)

    seen: list[int] = []
    url: str | None = "/api/v1/rag/cabinets?limit=2&sort=staleness"
    while url is not None:
        page = (await idle_client.get(url)).json()
        assert page["total"] == 5 and len(page["cabinets"]) <= 2
        seen += [c["cabinet_id"] for c in page["cabinets"]]
        url = page["next"]
    assert seen == [3, 13, 1, 2, 12]


async def test_bad_parameters_are_422_and_no_key_is_401(idle_client: httpx.AsyncClient) -> None:
    for params in ({"status": "broken"}, {"q": "abc"}, {"cursor": "NOT-A-CURSOR"}, {"limit": 0}):
        response = await idle_client.get("/api/v1/rag/cabinets", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]["code"] == "validation_error"
    anonymous = await idle_client.get("/api/v1/rag/cabinets", headers={"X-API-Key": ""})
    assert anonymous.status_code == 401
