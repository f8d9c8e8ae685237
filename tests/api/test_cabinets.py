"""`GET /api/v1/rag/cabinets/{cabinet_id}` and `POST /api/v1/rag/cabinets/{cabinet_id}/search`."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from rag_indexer_service.runs import Ledger
from tests.helpers import add_cabinet, wait_for_run


async def add_notes(conn: asyncpg.Connection, cabinet_id: int, bodies: list[str]) -> None:
    await conn.execute("INSERT INTO src_cabinets (id) VALUES ($1)", cabinet_id)
    await conn.executemany(
        "INSERT INTO src_docs (cabinet_id, id, title, body, tag, price) "
        "VALUES ($1, $2, $3, $4, 'a', 1)",
        [(cabinet_id, f"n{i}", f"Заметка {i}", body) for i, body in enumerate(bodies)],
    )


async def index_via_api(client: httpx.AsyncClient, ledger: Ledger, cabinet_id: int) -> int:
    run_id = int((await client.post(f"/api/v1/rag/index/{cabinet_id}")).json()["run_id"])
    run = await wait_for_run(ledger, run_id)
    assert run.status == "succeeded", run.error
    return run_id


async def test_an_indexed_cabinet_reports_its_index(
    client: httpx.AsyncClient, ledger: Ledger, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 11, docs=4)
    run_id = await index_via_api(client, ledger, 11)

    response = await client.get("/api/v1/rag/cabinets/11")

    assert response.status_code == 200
    body = response.json()
    assert body["cabinet_id"] == 11 and body["in_source"] is True and body["indexed"] is True
    assert body["documents"] == 4 and body["chunks"] == 4
    assert body["embedder_id"] and body["embedder_current"] is True
    assert body["last_success_at"] is not None and 0 <= body["staleness_s"] < 600
    assert body["last_run"]["run_id"] == run_id and body["last_run"]["status"] == "succeeded"
    assert body["active_run"] is None
    # 4 chunks, below RAG_SEARCH_ANN_MIN_CHUNKS: searched exactly, nothing to build
    assert body["search_index"] == {"path": "exact", "ann_lists": None, "build_due": False}
    links = body["links"]
    again = (await client.get(links["self"])).json()
    assert again["cabinet_id"] == 11 and again["last_run"] == body["last_run"]
    assert [r["run_id"] for r in (await client.get(links["runs"])).json()["runs"]] == [run_id]
    assert (await client.post(links["search"], json={"query": "товар"})).status_code == 200
    assert (await client.post(links["index"])).status_code == 202


async def test_a_listed_but_never_indexed_cabinet_is_not_indexed(
    idle_client: httpx.AsyncClient, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 12, docs=2)
    queued = (await idle_client.post("/api/v1/rag/index/12")).json()

    body = (await idle_client.get("/api/v1/rag/cabinets/12")).json()

    assert (body["in_source"], body["indexed"], body["documents"], body["chunks"]) == (
        True,
        False,
        0,
        0,
    )
    assert body["staleness_s"] is None and body["last_run"] is None
    assert body["active_run"]["run_id"] == queued["run_id"]


async def test_a_cabinet_neither_indexed_nor_listed_is_404(
    idle_client: httpx.AsyncClient,
) -> None:
    response = await idle_client.get("/api/v1/rag/cabinets/13")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "cabinet_not_found"


async def test_search_returns_only_the_cabinets_own_documents(
    client: httpx.AsyncClient, ledger: Ledger, source_conn: asyncpg.Connection
) -> None:
    await add_notes(source_conn, 21, ["Кроссовки для бега по асфальту.", "Носки шерстяные."])
    await add_notes(source_conn, 22, ["Жираф плюшевый, игрушка.", "Жираф резиновый."])
    await index_via_api(client, ledger, 21)
    await index_via_api(client, ledger, 22)

    own = await client.post("/api/v1/rag/cabinets/22/search", json={"query": "жираф", "k": 3})
    other = await client.post("/api/v1/rag/cabinets/21/search", json={"query": "жираф", "k": 3})

    assert own.status_code == 200
    body = own.json()
    assert (body["cabinet_id"], body["query"], body["k"]) == (22, "жираф", 3)
    assert body["results"] and "Жираф" in body["results"][0]["content"]
    assert {r["doc_id"] for r in body["results"]} <= {"n0", "n1"}
    assert other.status_code == 200
    assert all("Жираф" not in r["content"] for r in other.json()["results"])


async def test_search_of_a_cabinet_without_index_is_404(
    idle_client: httpx.AsyncClient, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 23, docs=1)

    response = await idle_client.post("/api/v1/rag/cabinets/23/search", json={"query": "x"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "cabinet_not_indexed"
    assert response.json()["error"]["message"] == (
        "cabinet 23 has no index yet; POST /api/v1/rag/index/23"
    )


async def test_search_of_a_cabinet_the_source_does_not_list_is_404_unknown(
    idle_client: httpx.AsyncClient,
) -> None:
    response = await idle_client.post("/api/v1/rag/cabinets/404/search", json={"query": "x"})

    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "cabinet_not_found",
        "message": "cabinet 404 is not listed by the source",
    }


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"query": ""}, "body field query: String should have at least 1 character"),
        ({"query": "   \n"}, "query must contain a character that is not a space"),
        ({"query": "я" * 1001}, "body field query: String should have at most 1000 characters"),
        ({"query": "x", "k": 0}, "body field k: Input should be greater than or equal to 1"),
        ({"query": "x", "k": 51}, "body field k: Input should be less than or equal to 50"),
        ({"query": "x", "min_similarity": 1.5}, "body field min_similarity: Input should be"),
        ({"query": "x", "min_similarity": False}, "body field min_similarity: Input should be"),
        ({"k": 5}, "body field query: Field required"),
        ({"query": "x", "extra": 1}, "body field extra: Extra inputs are not permitted"),
        (None, "a JSON request body is required"),
        ([1, 2], "the request body must be a JSON object"),
    ],
)
async def test_search_rejects_invalid_bodies(
    idle_client: httpx.AsyncClient, body: Any, fragment: str
) -> None:
    response = await idle_client.post("/api/v1/rag/cabinets/1/search", json=body)

    assert response.status_code == 422
    assert fragment in response.json()["error"]["message"]


async def test_search_rejects_a_body_that_is_not_json(idle_client: httpx.AsyncClient) -> None:
    response = await idle_client.post(
        "/api/v1/rag/cabinets/1/search",
        content=b'{"query": ',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert response.json()["error"]["message"] == "the request body is not valid JSON"
