"""A failed run's error, stored and shown over HTTP, is one sentence naming the cabinet and
what to check; SQL, parameters and document data stay in the log (real API process)."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from rag_indexer_service.jobs.execution import run_inline
from rag_indexer_service.runtime import Runtime
from tests.api.conftest import API_KEY, Spawn, free_port, wait_ready
from tests.helpers import add_cabinet

REFUSING_TRIGGER = """
CREATE FUNCTION rag_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refused by a trigger';
END $$;
CREATE TRIGGER rag_test_refuse BEFORE INSERT ON rag_documents
    FOR EACH ROW EXECUTE FUNCTION rag_test_refuse();
"""


async def test_a_failed_runs_error_shows_no_sql_parameters_or_data(
    runtime: Runtime,
    source_conn: asyncpg.Connection,
    spawn: Spawn,
    worker_env: dict[str, str],
) -> None:
    await add_cabinet(source_conn, 8, docs=3)
    await source_conn.execute("UPDATE src_docs SET body = 'секретные данные продавца'")
    await source_conn.execute(REFUSING_TRIGGER)
    with pytest.raises(Exception, match="refused by a trigger"):
        await run_inline(runtime, 8)
    port = free_port()
    proc = spawn("api", "--port", str(port), env={**worker_env, "RAG_API_KEYS": API_KEY})
    await wait_ready(f"http://127.0.0.1:{port}", proc)

    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": API_KEY}
    ) as client:
        runs = (await client.get("/api/v1/rag/runs", params={"cabinet_id": 8})).json()["runs"]
        shown = await client.get(f"/api/v1/rag/runs/{runs[0]['run_id']}")

    assert runs[0]["error"] == (
        "cabinet 8: the service database refused a statement: refused by a trigger; "
        "see the worker log"
    )
    for leak in ("[SQL", "INSERT", "parameters", "секретные", "d0"):
        assert leak not in shown.text, leak
