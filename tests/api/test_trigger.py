"""`POST /api/v1/rag/index/{cabinet_id}` and `POST /api/v1/rag/index`."""

from __future__ import annotations

import asyncio

import asyncpg
import dramatiq
import httpx
import pytest
from dramatiq.brokers.stub import StubBroker

from rag_indexer_service.api import create_app
from rag_indexer_service.config import Settings
from rag_indexer_service.jobs.broker import QUEUE_MANUAL
from rag_indexer_service.runs import Ledger
from tests.api.conftest import asgi_client, running
from tests.helpers import add_cabinet, wait_for_run

BAD_IDS = ["0", "-1", "abc", "1.5", "9223372036854775808", "1e3"]


async def test_trigger_answers_202_with_the_queued_run_and_the_worker_runs_it(
    client: httpx.AsyncClient, ledger: Ledger, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 7, docs=3)

    response = await client.post("/api/v1/rag/index/7")

    assert response.status_code == 202
    body = response.json()
    assert body["cabinet_id"] == 7 and body["trigger"] == "manual"
    assert body["status"] == "queued"
    assert body["deduplicated"] is False and body["rerun_requested"] is False
    assert body["links"]["self"] == f"/api/v1/rag/runs/{body['run_id']}"
    assert response.headers["Location"] == body["links"]["self"]
    run = await wait_for_run(ledger, body["run_id"])
    assert run.status == "succeeded" and run.counters["docs_added"] == 3


async def test_force_true_queues_a_forced_run_that_scans_an_unchanged_cabinet(
    client: httpx.AsyncClient, ledger: Ledger, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 7, docs=2)
    await wait_for_run(ledger, (await client.post("/api/v1/rag/index/7")).json()["run_id"])

    response = await client.post("/api/v1/rag/index/7", params={"force": "true"})

    assert response.status_code == 202 and response.json()["forced"] is True
    run = await wait_for_run(ledger, response.json()["run_id"])
    shown = (await client.get(f"/api/v1/rag/runs/{run.id}")).json()
    assert shown["forced"] is True and shown["counters"]["scan_skipped"] is False
    assert (await client.post("/api/v1/rag/index/7", params={"force": "maybe"})).status_code == 422


async def test_unknown_cabinet_is_404_and_creates_no_run(
    client: httpx.AsyncClient, ledger: Ledger
) -> None:
    response = await client.post("/api/v1/rag/index/404")

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "cabinet_not_found", "message": "cabinet 404 is not listed by the source"}
    }
    assert await ledger.list_runs() == []


@pytest.mark.parametrize("raw", BAD_IDS)
async def test_cabinet_id_must_be_a_positive_int64(client: httpx.AsyncClient, raw: str) -> None:
    response = await client.post(f"/api/v1/rag/index/{raw}")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith(
        "path parameter cabinet_id must be a positive 64-bit integer"
    )
    assert repr(raw) in error["message"]


async def test_a_second_trigger_joins_the_queued_run(
    idle_client: httpx.AsyncClient, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 3, docs=1)
    first = (await idle_client.post("/api/v1/rag/index/3")).json()

    second = await idle_client.post("/api/v1/rag/index/3")

    assert second.status_code == 202
    assert second.json()["run_id"] == first["run_id"]
    assert second.json()["deduplicated"] is True


async def test_50_concurrent_triggers_make_one_run_and_send_one_message(
    idle_client: httpx.AsyncClient,
    idle_broker: dramatiq.Broker,
    ledger: Ledger,
    source_conn: asyncpg.Connection,
) -> None:
    await add_cabinet(source_conn, 9, docs=1)

    responses = await asyncio.gather(*(idle_client.post("/api/v1/rag/index/9") for _ in range(50)))

    assert {r.status_code for r in responses} == {202}
    bodies = [r.json() for r in responses]
    assert len({b["run_id"] for b in bodies}) == 1
    assert sum(not b["deduplicated"] for b in bodies) == 1
    runs = await ledger.list_runs(cabinet_id=9)
    assert len(runs) == 1 and runs[0].status == "queued"
    assert isinstance(idle_broker, StubBroker)
    assert idle_broker.queues[QUEUE_MANUAL].qsize() == 1


async def test_index_all_queues_every_cabinet_without_an_active_run(
    idle_client: httpx.AsyncClient, source_conn: asyncpg.Connection
) -> None:
    for cabinet_id in (1, 2, 3):
        await add_cabinet(source_conn, cabinet_id, docs=1)
    await idle_client.post("/api/v1/rag/index/2")

    response = await idle_client.post("/api/v1/rag/index")

    assert response.status_code == 202
    assert response.json() == {
        "requested": 3,
        "enqueued": 2,
        "already_active": 1,
        "queue": QUEUE_MANUAL,
    }


async def test_index_all_with_force_true_queues_forced_runs(
    idle_client: httpx.AsyncClient, ledger: Ledger, source_conn: asyncpg.Connection
) -> None:
    for cabinet_id in (1, 2):
        await add_cabinet(source_conn, cabinet_id, docs=1)

    response = await idle_client.post("/api/v1/rag/index", params={"force": "true"})

    assert response.status_code == 202 and response.json()["enqueued"] == 2
    runs = await ledger.list_runs()
    assert sorted(run.cabinet_id for run in runs) == [1, 2]
    assert all(run.forced for run in runs)
    refused = await idle_client.post("/api/v1/rag/index", params={"force": "maybe"})
    assert refused.status_code == 422


async def test_broker_down_is_503_and_leaves_no_queued_run(
    api_settings: Settings, ledger: Ledger, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 5, docs=1)
    dead = api_settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    async with running(create_app(dead)) as app, asgi_client(app) as client:
        response = await client.post("/api/v1/rag/index/5")

    assert response.status_code == 503
    assert response.headers["Retry-After"]
    error = response.json()["error"]
    assert error["code"] == "broker_unavailable"
    assert "nothing was queued" in error["message"] and "127.0.0.1" not in error["message"]
    assert await ledger.active_run(5) is None
    [run] = await ledger.list_runs(cabinet_id=5)
    assert run.status == "failed" and "could not enqueue" in (run.error or "")


async def test_a_broken_source_query_is_502_without_sql_in_the_body(
    client: httpx.AsyncClient, source_conn: asyncpg.Connection
) -> None:
    await source_conn.execute("ALTER TABLE src_cabinets RENAME TO src_cabinets_gone")

    response = await client.post("/api/v1/rag/index/1")

    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "source_query_failed"
    assert "src_cabinets" not in error["message"] and "SELECT" not in error["message"]
