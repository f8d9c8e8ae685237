"""A real `rag-indexer api` process (uvicorn) with a real worker process and real Redis, and
schemathesis over the served OpenAPI schema."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import psutil

from rag_indexer_service.config import Settings, load_settings
from rag_indexer_service.jobs.execution import run_inline
from rag_indexer_service.runtime import Runtime, open_runtime
from tests.api.conftest import API_KEY, Spawn, free_port, wait_ready
from tests.helpers import add_cabinet

BIN = Path(sys.executable).parent


async def poll_run(client: httpx.AsyncClient, url: str, timeout_s: float = 60) -> dict[str, object]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        run: dict[str, object] = (await client.get(url)).json()
        if run["status"] in ("succeeded", "failed"):
            return run
        assert asyncio.get_running_loop().time() < deadline, f"run still {run['status']}"
        await asyncio.sleep(0.1)


async def test_trigger_poll_and_search_through_real_api_and_worker_processes(
    spawn: Spawn, api_server: str, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 51, docs=20)
    spawn("worker", "--processes", "1", "--threads", "1")

    async with httpx.AsyncClient(
        base_url=api_server, headers={"X-API-Key": API_KEY}, timeout=10
    ) as client:
        accepted = await client.post("/api/v1/rag/index/51")
        assert accepted.status_code == 202
        run = await poll_run(client, accepted.json()["links"]["self"])
        search = await client.post(
            "/api/v1/rag/cabinets/51/search", json={"query": "Товар 7", "k": 3}
        )
        cabinet = (await client.get("/api/v1/rag/cabinets/51")).json()
        metrics = (await client.get("/metrics")).text

    assert run["status"] == "succeeded", run["error"]
    assert run["counters"]["docs_added"] == 20  # type: ignore[index]
    assert search.status_code == 200 and search.json()["results"][0]["doc_id"] == "d7"
    assert cabinet["indexed"] is True and cabinet["documents"] == 20
    assert 'rag_metrics_source_up{source="broker"} 1.0' in metrics  # read from real Redis
    assert 'rag_queue_messages{queue="rag-manual",state="ready"} 0.0' in metrics
    assert 'rag_runs{status="succeeded",trigger="manual"} 1.0' in metrics


async def test_the_api_process_follows_generation_swaps_made_in_another_process(
    api_server: str, worker_settings: Settings, source_conn: asyncpg.Connection
) -> None:
    """The API process caches which generation a cabinet searches; the statement checks it,
    so swaps by other processes are seen at once, never as an empty or a mixed result."""
    await add_cabinet(source_conn, 52, docs=20)
    other_model = load_settings(**{**worker_settings.model_dump(), "embedding_dim": 64})
    async with httpx.AsyncClient(
        base_url=api_server, headers={"X-API-Key": API_KEY}, timeout=10
    ) as client:

        async def search(query: str) -> httpx.Response:
            return await client.post(
                "/api/v1/rag/cabinets/52/search", json={"query": query, "k": 3}
            )

        async with open_runtime(worker_settings) as rt:
            await rt.indexer.index_cabinet(52)  # generation 0, the API's embedder
            first = await search("Товар 7")
            async with open_runtime(other_model) as other:
                await other.indexer.index_cabinet(52)  # generation 1, another model
            refused = await search("Товар 7")
            await source_conn.execute(
                "UPDATE src_docs SET body = 'Обновлённое описание ' || id WHERE cabinet_id = 52"
            )
            report = await rt.indexer.index_cabinet(52)  # generation 2, the API's again
            again = await search("Обновлённое описание")

    assert first.status_code == 200 and first.json()["results"][0]["doc_id"] == "d7"
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "embedder_mismatch"
    assert report.rebuild
    results = again.json()["results"]
    assert again.status_code == 200 and len(results) == 3
    assert all("Обновлённое описание" in hit["content"] for hit in results)


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    api_server: str, runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    # Cabinet 42 is the OpenAPI example id: the examples phase searches a real index.
    await add_cabinet(source_conn, 42, docs=5)
    await run_inline(runtime, 42)
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "schemathesis"),
        "run",
        f"{api_server}/openapi.json",
        "--header",
        f"X-API-Key: {API_KEY}",
        "--checks",
        "all",
        "--max-examples",
        "5",
        "--seed",
        "1",
        # One worker: with threads, CPython 3.11's ast module can fail inside hypothesis
        # ("AST constructor recursion depth mismatch"), an error of the tool, not of the API.
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=100)

    report = output.decode(errors="replace")
    assert proc.returncode == 0, report
    assert "No issues found" in report, report


def test_api_command_without_keys_refuses_to_start(worker_env: dict[str, str]) -> None:
    env = {k: v for k, v in worker_env.items() if not k.startswith("RAG_API_KEYS")}

    done = subprocess.run(
        [str(BIN / "rag-indexer"), "api", "--port", "1"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        "error: no API keys configured: set RAG_API_KEYS or RAG_API_KEYS_FILE "
        "(or RAG_API_AUTH=disabled to serve the API without authentication)"
    ]


def server_processes(parent: int) -> set[int]:
    """The pids of uvicorn's server processes under `parent` (multiprocessing spawns them)."""
    children = psutil.Process(parent).children()
    return {p.pid for p in children if any("spawn_main" in part for part in p.cmdline())}


async def test_api_with_two_server_processes_serves_and_keeps_them(
    spawn: Spawn, worker_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "api.log"
    with log.open("wb") as stderr:
        proc = spawn(
            "api",
            *("--port", str(port), "--workers", "2"),
            env={**worker_env, "RAG_API_KEYS": API_KEY},
            stderr=stderr,
        )
    base_url = f"http://127.0.0.1:{port}"
    await wait_ready(base_url, proc, timeout_s=120)
    servers = server_processes(proc.pid)

    # Past uvicorn's default 5 s health check: a server process still starting up (imports
    # on a loaded machine) was killed and replaced, over and over.
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        for _ in range(8):
            assert (await client.get("/healthz")).status_code == 200
            await asyncio.sleep(1)

    assert len(servers) == 2 and server_processes(proc.pid) == servers
    assert "died" not in log.read_text(), log.read_text()
