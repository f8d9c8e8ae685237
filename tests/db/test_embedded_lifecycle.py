"""The embedded Postgres is stopped by the last of the separate processes to leave it: a CLI
command, `rag-indexer api` (uvicorn dies of the SIGTERM it re-raises, without `atexit`) and
`rag-indexer worker` (exec'd into Dramatiq; its worker processes end through `os._exit`).
A client killed with SIGKILL leaves its pid behind, which the next start drops.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.api.conftest import free_port
from tests.helpers import RAG, flushed_redis, rag

API_KEY = "lifecycle-key-0123456789abcdef"

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    with flushed_redis() as broker_url:
        yield {
            **base,
            "RAG_DATA_DIR": str(tmp_path / "data"),
            "RAG_BROKER_URL": broker_url,
            "RAG_API_KEYS": API_KEY,
            "RAG_EMBEDDER": "hashing",
        }


def client_pids(data: Path) -> list[int]:
    return list(json.loads((data / "pg" / ".handle_pids.json").read_text() or "[]"))


def postmaster(data: Path) -> int | None:
    """The running postmaster's pid, or None if there is none."""
    try:
        pid = int((data / "pg" / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if psutil.pid_exists(pid) else None


def wait_stopped(data: Path, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while postmaster(data) is not None:
        assert time.monotonic() < deadline, f"postgres still runs; clients {client_pids(data)}"
        time.sleep(0.1)


def start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [RAG, *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the API did not become ready\n{log.read_text()}")


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL to whatever is left of each process group (a test that failed)."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    try:
        for proc in procs:
            proc.wait(timeout=30)
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_last_process_to_leave_stops_the_server(env: dict[str, str], tmp_path: Path) -> None:
    data = Path(env["RAG_DATA_DIR"])
    logs = tmp_path / "logs"
    logs.mkdir()
    # A CLI command starts the server and, as its only client, stops it when it exits.
    seeded = rag(env, "demo", "seed", "--cabinets", "2", "--products", "2", "--reviews", "1")
    assert seeded.returncode == 0, seeded.stderr
    wait_stopped(data)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = start(env, logs / "api.log", "api", "--port", str(port))
    worker = start(env, logs / "worker.log", "worker", "--processes", "1", "--threads", "1")
    procs = [api, worker]
    try:
        wait_ready(base, api, logs / "api.log")
        with httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=10) as client:
            run_id = client.post("/api/v1/rag/index/1").json()["run_id"]
            deadline = time.monotonic() + 60
            while (status := client.get(f"/api/v1/rag/runs/{run_id}").json()["status"]) not in (
                "succeeded",
                "failed",
            ):
                assert time.monotonic() < deadline, (logs / "worker.log").read_text()
                time.sleep(0.2)
        assert status == "succeeded", (logs / "worker.log").read_text()
        # The API and the worker process that ran the run are clients; the `worker` command
        # (now Dramatiq's parent, same pid) left before its exec.
        clients = client_pids(data)
        dramatiq_children = [p.pid for p in psutil.Process(worker.pid).children()]
        assert api.pid in clients and worker.pid not in clients, clients
        assert set(clients) & set(dramatiq_children), (clients, dramatiq_children)
        # A CLI command joins and leaves while they run: the server stays up.
        upgraded = rag(env, "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        assert postmaster(data) is not None
    finally:
        stop(procs)
    # Then the last of them stopped the server.
    wait_stopped(data)
    assert client_pids(data) == []

    # A client killed with SIGKILL leaves its pid behind: the next start drops it, and that
    # process, the only live client, stops the server when it exits.
    api = start(env, logs / "api2.log", "api", "--port", str(port))
    try:
        wait_ready(base, api, logs / "api2.log")
        os.killpg(api.pid, signal.SIGKILL)
        api.wait()
        assert postmaster(data) is not None and client_pids(data) == [api.pid]
    finally:
        stop([api])
    upgraded = rag(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    wait_stopped(data)
    assert client_pids(data) == []
