"""Health, readiness, metrics, the error shape of unknown routes, and request logs."""

from __future__ import annotations

import logging

import asyncpg
import dramatiq
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from rag_indexer_service.api import create_app
from rag_indexer_service.api.middleware import ACCESS_LOGGER
from rag_indexer_service.config import Settings
from rag_indexer_service.db.engine import asyncpg_dsn
from rag_indexer_service.runs import Ledger
from tests.api.conftest import asgi_client, running
from tests.helpers import add_cabinet, wait_for_run


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    ready = await client.get("/readyz")

    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


async def test_readyz_names_the_broker_when_redis_is_down(api_settings: Settings) -> None:
    dead = api_settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    app = create_app(dead)  # its own Redis broker, pointed at a closed port
    async with running(app), asgi_client(app) as client:
        response = await client.get("/readyz")
        scrape = await client.get("/metrics")

    assert response.status_code == 503
    assert response.json() == {
        "error": {"code": "not_ready", "message": "not ready: broker unreachable"}
    }
    assert scrape.status_code == 200
    assert samples(scrape.text)[("rag_metrics_source_up", (("source", "broker"),))] == 0.0


async def test_database_gone_is_503_for_reads_writes_and_readiness(
    app: FastAPI, client: httpx.AsyncClient, server_url: str, database_url: str
) -> None:
    name = make_url(database_url).database
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await admin.execute(f"ALTER DATABASE {name} RENAME TO {name}_away")

        run = await client.get("/api/v1/rag/runs/1")
        trigger = await client.post("/api/v1/rag/index/1")
        ready = await client.get("/readyz")
        scrape = await client.get("/metrics")
    finally:
        await admin.execute(f"ALTER DATABASE {name}_away RENAME TO {name}")
        await admin.close()

    for response in (run, trigger):
        assert response.status_code == 503
        assert response.json()["error"]["code"] in ("database_unavailable", "source_unavailable")
        assert "rag_test" not in response.text
    assert run.json()["error"] == {
        "code": "database_unavailable",
        "message": "the service database is unreachable; try again later",
    }
    assert ready.status_code == 503 and "database unreachable" in ready.text
    assert samples(scrape.text)[("rag_metrics_source_up", (("source", "database"),))] == 0.0


async def test_metrics_show_runs_durations_documents_queues_and_latency(
    client: httpx.AsyncClient, ledger: Ledger, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 31, docs=6)
    run_id = (await client.post("/api/v1/rag/index/31")).json()["run_id"]
    await wait_for_run(ledger, run_id)
    await client.get("/api/v1/rag/runs/404")

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert found[("rag_runs", (("status", "succeeded"), ("trigger", "manual")))] == 1.0
    assert found[("rag_runs", (("status", "queued"), ("trigger", "schedule")))] == 0.0
    duration = (("status", "succeeded"), ("trigger", "manual"))
    assert found[("rag_run_duration_seconds_count", duration)] == 1.0
    assert found[("rag_run_duration_seconds_bucket", (("le", "+Inf"), *duration))] == 1.0
    assert found[("rag_documents_indexed_total", (("change", "added"),))] == 6.0
    assert found[("rag_chunks_embedded_total", ())] == 6.0
    assert found[("rag_index_documents", ())] == 6.0
    for queue in ("rag-manual", "rag-scheduled"):
        assert found[("rag_queue_messages", (("queue", queue), ("state", "ready")))] == 0.0
    latency = (
        ("method", "POST"),
        ("route", "/api/v1/rag/index/{cabinet_id}"),
        ("status", "202"),
    )
    assert found[("rag_api_request_duration_seconds_count", latency)] == 1.0
    not_found = (("method", "GET"), ("route", "/api/v1/rag/runs/{run_id}"), ("status", "404"))
    assert found[("rag_api_request_duration_seconds_count", not_found)] == 1.0
    assert found[("rag_metrics_source_up", (("source", "database"),))] == 1.0


async def test_two_apps_in_one_process_have_separate_registries(
    api_settings: Settings, stub_worker: dramatiq.Broker
) -> None:
    first = create_app(api_settings, broker=stub_worker)
    second = create_app(api_settings, broker=stub_worker)
    async with running(first), running(second), asgi_client(first) as a, asgi_client(second) as b:
        await a.get("/healthz")
        text = (await b.get("/metrics")).text

    assert 'route="/healthz"' not in text


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("GET", "/api/v1/rag/nothing", 404, "not_found"),
        ("DELETE", "/api/v1/rag/runs/1", 405, "method_not_allowed"),
    ],
)
async def test_unknown_routes_and_methods_use_the_error_shape(
    client: httpx.AsyncClient, method: str, path: str, status: int, code: str
) -> None:
    response = await client.request(method, path)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert set(response.json()) == {"error"} and set(response.json()["error"]) == {
        "code",
        "message",
    }


async def test_each_request_is_logged_with_structured_fields(
    client: httpx.AsyncClient,
    ledger: Ledger,
    source_conn: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await add_cabinet(source_conn, 41, docs=1)
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)

    response = await client.post("/api/v1/rag/index/41", headers={"X-Request-ID": "req-1"})
    await wait_for_run(ledger, response.json()["run_id"])  # the worker stops after the test

    [record] = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert (record.method, record.path, record.status) == ("POST", "/api/v1/rag/index/41", 202)  # type: ignore[attr-defined]
    assert record.run_id == response.json()["run_id"]  # type: ignore[attr-defined]
    assert record.request_id == "req-1" and response.headers["X-Request-ID"] == "req-1"  # type: ignore[attr-defined]
    assert record.duration_ms >= 0  # type: ignore[attr-defined]
    assert f"run_id={record.run_id}" in record.getMessage()  # type: ignore[attr-defined]
