"""The bulk trigger takes run ids only for the runs it actually inserts (real API process)."""

from __future__ import annotations

import asyncpg
import httpx

from rag_indexer_service.db.engine import asyncpg_dsn
from tests.api.conftest import API_KEY
from tests.faults.conftest import Served

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
