"""`rag-indexer up --demo` as a newcomer runs it: embedded Postgres, in-process broker, the API,
a worker and the scheduler in one process; a restart keeps data and key."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from rag_indexer_service.allinone import DEMO_POLL_S
from tests.helpers import RAG, rag


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_up(env: dict[str, str], port: int, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [RAG, "up", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_ready(base: str, proc: subprocess.Popen[str], timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("rag-indexer up did not become ready")


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return out


def wait_run(client: httpx.Client, run_id: int, timeout_s: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = client.get(f"/api/v1/rag/runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed"):
            return dict(run)
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


@pytest.fixture
def up_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return {**env, "RAG_DATA_DIR": str(tmp_path / "data")}


@pytest.mark.timeout(480)
def test_up_demo_serves_indexes_and_restarts_with_the_same_data_and_key(
    up_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_up(up_env, port, "--demo")
    try:
        wait_ready(base, proc)
        key = (tmp_path / "data" / "api-key").read_text().strip()
        assert oct((tmp_path / "data" / "api-key").stat().st_mode & 0o777) == "0o600"
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=10) as client:
            assert client.get("/api/v1/rag/runs", headers={"X-API-Key": "wrong"}).status_code == 401
            triggered = client.post("/api/v1/rag/index/2")
            assert triggered.status_code == 202
            run = wait_run(client, triggered.json()["run_id"])
            assert run["status"] == "succeeded"
            found = client.post("/api/v1/rag/cabinets/2/search", json={"query": "товар", "k": 3})
            assert found.status_code == 200 and found.json()["results"]
            chunks = client.get("/api/v1/rag/cabinets/2").json()["chunks"]
            deadline = time.monotonic() + 120  # the demo's first index done: its line follows
            while client.get("/api/v1/rag/cabinets", params={"status": "never"}).json()["total"]:
                assert time.monotonic() < deadline, "the demo was not indexed in time"
                time.sleep(0.2)
            while any(
                client.get("/api/v1/rag/runs", params={"status": s}).json()["runs"]
                for s in ("queued", "running", "retrying")
            ):
                assert time.monotonic() < deadline, "runs still active"
                time.sleep(0.2)
            time.sleep(DEMO_POLL_S + 1)
    finally:
        output = stop(proc)
    assert proc.returncode == 0, output
    assert key in output and "/docs" in output
    # what a newcomer reads: the console and its key first, then a line once the demo is indexed
    assert f":{port}/ui  (log in with the API key)" in output
    assert f":{port}/api/v1/rag/runs?limit=5'" in output  # quoted, pastes into zsh too
    up_at, indexed_at = output.index("rag-indexer is up"), output.index("demo indexed: ")
    assert up_at < indexed_at and re.search(r"demo indexed: (\d+) of \1 cabinets", output), output
    assert output.count("embedded postgres ready") == 1 and f"pid {proc.pid})" not in output
    assert "seeded the demo source" in output and "could not describe" not in output

    proc = start_up(up_env, port)
    try:
        wait_ready(base, proc)
        assert (tmp_path / "data" / "api-key").read_text().strip() == key
        # The CLI has no broker: it queues in the ledger, and `up` takes the run from there.
        queued = rag(up_env, "index", "3", "--queue", "--json")
        assert queued.returncode == 0, queued.stderr
        [requested] = json.loads(queued.stdout)
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=10) as client:
            assert client.get("/api/v1/rag/cabinets/2").json()["chunks"] == chunks
            run = wait_run(client, requested["run_id"], timeout_s=30)
            assert (run["status"], run["trigger"]) == ("succeeded", "cli")
    finally:
        stop(proc)

    refused = rag(up_env, "index", "3", "--queue")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: RAG_BROKER_URL is not set and no `rag-indexer up`")
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr


def test_up_on_a_busy_port_is_one_line(up_env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        result = subprocess.run(
            [RAG, "up", "--port", str(port)], env=up_env, capture_output=True, text=True, timeout=60
        )

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is already in use (choose another with --port)"
    )


def test_up_with_an_unwritable_data_dir_is_one_line(up_env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = {**up_env, "RAG_DATA_DIR": str(blocker / "data")}

    result = subprocess.run(
        [RAG, "up", "--port", str(free_port())], env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert result.stderr.startswith("error: RAG_DATA_DIR: ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
