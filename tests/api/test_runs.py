"""`GET /api/v1/rag/runs/{run_id}` and `GET /api/v1/rag/runs` (newest first, cursor pages)."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import text

from rag_indexer_service.indexing.report import DocFailure, IndexReport
from rag_indexer_service.jobs.broker import QUEUE_MANUAL
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime


async def test_a_running_run_shows_progress_and_an_eta(
    idle_client: httpx.AsyncClient, ledger: Ledger, runtime: Runtime
) -> None:
    run, _ = await ledger.request(4, "manual", QUEUE_MANUAL)
    await ledger.start_attempt(run.id, worker_id="w1", stale_after_s=60)
    await ledger.heartbeat(run.id, worker_id="w1", done=50, total=200)
    async with runtime.db.engine.begin() as conn:  # 50 documents in 10 s: 5 per second
        await conn.execute(
            text("UPDATE rag_runs SET started_at = heartbeat_at - interval '10 s' WHERE id = :i"),
            {"i": run.id},
        )
    beat = (await ledger.get(run.id)).heartbeat_at  # type: ignore[union-attr]

    response = await idle_client.get(f"/api/v1/rag/runs/{run.id}")

    assert response.status_code == 200
    body = response.json()
    assert (body["run_id"], body["cabinet_id"], body["status"], body["attempt"]) == (
        run.id,
        4,
        "running",
        1,
    )
    progress = body["progress"]
    assert (progress["done"], progress["total"], progress["percent"]) == (50, 200, 25.0)
    assert progress["eta_s"] == 30.0
    assert dt.datetime.fromisoformat(progress["eta_at"]) == beat + dt.timedelta(seconds=30)
    assert body["links"] == {
        "self": f"/api/v1/rag/runs/{run.id}",
        "cabinet": "/api/v1/rag/cabinets/4",
    }


async def test_a_queued_run_has_no_eta(idle_client: httpx.AsyncClient, ledger: Ledger) -> None:
    run, _ = await ledger.request(4, "manual", QUEUE_MANUAL)

    progress = (await idle_client.get(f"/api/v1/rag/runs/{run.id}")).json()["progress"]

    assert progress == {"done": 0, "total": None, "percent": None, "eta_s": None, "eta_at": None}


async def test_a_failed_run_shows_its_error(idle_client: httpx.AsyncClient, ledger: Ledger) -> None:
    run, _ = await ledger.request(4, "manual", QUEUE_MANUAL)
    await ledger.fail(run.id, "SourceUnavailable: source down", retrying=False)

    body = (await idle_client.get(f"/api/v1/rag/runs/{run.id}")).json()

    assert body["status"] == "failed" and body["error"] == "SourceUnavailable: source down"
    assert body["finished_at"] is not None


async def test_a_succeeded_run_shows_counters_and_failed_documents(
    idle_client: httpx.AsyncClient, ledger: Ledger
) -> None:
    run, _ = await ledger.request(4, "manual", QUEUE_MANUAL)
    await ledger.start_attempt(run.id, worker_id="w1", stale_after_s=60)
    report = IndexReport(cabinet_id=4, docs_seen=3, docs_added=2, docs_failed=1, duration_s=0.5)
    report.mode, report.full_reason = "full", "every 48 runs"
    report.failures.append(DocFailure(kind="note", doc_id="d9", reason="missing field 'title'"))
    await ledger.succeed(run.id, report, worker_id="w1")

    body = (await idle_client.get(f"/api/v1/rag/runs/{run.id}")).json()

    assert body["status"] == "succeeded" and body["duration_s"] == 0.5
    assert (body["mode"], body["full_reason"]) == ("full", "every 48 runs")
    assert (body["counters"]["docs_added"], body["counters"]["docs_failed"]) == (2, 1)
    assert body["failures"] == [{"kind": "note", "doc_id": "d9", "reason": "missing field 'title'"}]
    assert body["progress"]["percent"] == 100.0 and body["progress"]["eta_s"] is None


async def test_unknown_run_is_404(idle_client: httpx.AsyncClient) -> None:
    response = await idle_client.get("/api/v1/rag/runs/999")

    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "run_not_found",
        "message": "run 999 does not exist",
    }


@pytest.mark.parametrize("raw", ["0", "x", "-3", "99999999999999999999"])
async def test_run_id_must_be_a_positive_int64(idle_client: httpx.AsyncClient, raw: str) -> None:
    response = await idle_client.get(f"/api/v1/rag/runs/{raw}")

    assert response.status_code == 422
    assert "run_id must be a positive 64-bit integer" in response.json()["error"]["message"]


async def make_runs(ledger: Ledger, cabinets: range) -> list[int]:
    ids = []
    for cabinet_id in cabinets:
        run, _ = await ledger.request(cabinet_id, "manual", QUEUE_MANUAL)
        ids.append(run.id)
    return ids


async def test_listing_pages_newest_first_until_the_last_page(
    idle_client: httpx.AsyncClient, ledger: Ledger
) -> None:
    ids = await make_runs(ledger, range(1, 6))
    seen: list[int] = []
    url: str | None = "/api/v1/rag/runs?limit=2"
    pages = 0

    while url is not None:
        page = (await idle_client.get(url)).json()
        seen += [r["run_id"] for r in page["runs"]]
        url = page["next"]
        pages += 1
        assert (page["next_cursor"] is None) == (url is None)

    assert seen == sorted(ids, reverse=True)
    assert pages == 3


async def test_listing_filters_by_cabinet_and_status(
    idle_client: httpx.AsyncClient, ledger: Ledger
) -> None:
    ids = await make_runs(ledger, range(1, 4))
    await ledger.fail(ids[1], "boom", retrying=False)

    by_cabinet = (await idle_client.get("/api/v1/rag/runs", params={"cabinet_id": 3})).json()
    failed = (await idle_client.get("/api/v1/rag/runs", params={"status": "failed"})).json()

    assert [r["run_id"] for r in by_cabinet["runs"]] == [ids[2]]
    assert [r["run_id"] for r in failed["runs"]] == [ids[1]]
    assert failed["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": 0}, "query parameter limit"),
        ({"limit": 201}, "query parameter limit"),
        ({"status": "bogus"}, "query parameter status"),
        ({"cabinet_id": 0}, "query parameter cabinet_id must be a positive 64-bit integer"),
        ({"cursor": "not a cursor!"}, "query parameter cursor"),
    ],
)
async def test_listing_rejects_invalid_parameters(
    idle_client: httpx.AsyncClient, params: dict[str, object], fragment: str
) -> None:
    response = await idle_client.get("/api/v1/rag/runs", params=params)

    assert response.status_code == 422
    assert fragment in response.json()["error"]["message"]
