"""The compose topology on this machine, started from the installed `rag-indexer` console script:
a one-shot `db upgrade`, `demo seed`, one `api`, two `worker` processes, and two `scheduler`
replicas per tick, on the real Redis and one Postgres server (the test server) shared by all.

Every process gets its own PYTHONHASHSEED, so anything that crosses a process boundary must be
built the same way whatever the seed. Scheduler ticks are driven with `scheduler --once
--tick-at T` (two replicas racing for each tick), so each tick is deterministic.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from rag_indexer_service.db.engine import asyncpg_dsn
from tests.api.conftest import free_port, wait_ready
from tests.helpers import flushed_redis

RAG = str(Path(sys.executable).with_name("rag-indexer"))
API_KEY = "e2e-key-0123456789abcdef"
DEMO_CABINETS = 10
SEARCH_INDEX_MIN_CHUNKS = 10
FINISHED = ("succeeded", "failed", "skipped")


@dataclass
class Topology:
    env: dict[str, str]
    database_url: str
    api_url: str
    logs: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _seeds: Iterator[int] = field(default_factory=lambda: itertools.count(1001))
    seeds_used: list[int] = field(default_factory=list)

    def _env(self) -> dict[str, str]:
        seed = next(self._seeds)
        self.seeds_used.append(seed)
        return {**self.env, "PYTHONHASHSEED": str(seed)}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """A long-running process in its own session; its output goes to `logs/name.log`."""
        with (self.logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                [RAG, *args],
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(proc)
        return proc

    async def rag(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        """A one-shot `rag-indexer ARGS...`, as an operator types it."""
        env = self._env()
        return await asyncio.to_thread(
            subprocess.run,
            [RAG, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.api_url, headers={"X-API-Key": API_KEY}, timeout=10)

    def log_tails(self, lines: int = 15) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    def stop(self) -> None:
        """SIGTERM to every process (dramatiq's parent forwards it to its workers: a second one
        straight to a worker would cut its shutdown short), then SIGKILL to what is left of
        each process group."""
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)


@pytest.fixture(scope="module")
def e2e_broker_url() -> Iterator[str]:
    with flushed_redis() as url:
        yield url


@pytest.fixture(scope="module")
async def e2e_database_url(server_url: str) -> AsyncIterator[str]:
    """An empty database on the test server: `rag-indexer db upgrade` creates the schema."""
    name = f"rag_e2e_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def topology(
    e2e_database_url: str, e2e_broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Topology]:
    """migrate, seed, then `api` and two `worker` processes, as compose starts them."""
    tmp = tmp_path_factory.mktemp("e2e")
    logs = tmp / "logs"
    logs.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        {
            "RAG_DATABASE_URL": e2e_database_url,
            "RAG_BROKER_URL": e2e_broker_url,
            "RAG_DATA_DIR": str(tmp / "data"),
            "RAG_API_KEYS": API_KEY,
            "RAG_HEARTBEAT_INTERVAL_S": "0.5",
            "RAG_RETRY_MIN_BACKOFF_S": "0.1",
            "RAG_RETRY_MAX_BACKOFF_S": "0.5",
            # every demo cabinet gets search indexes of its own, built by the workers
            "RAG_SEARCH_ANN_MIN_CHUNKS": str(SEARCH_INDEX_MIN_CHUNKS),
        }
    )
    top = Topology(
        env=env, database_url=e2e_database_url, api_url=f"http://127.0.0.1:{port}", logs=logs
    )
    try:
        migrated = await top.rag("db", "upgrade")
        assert migrated.returncode == 0, migrated.stderr
        seeded = await top.rag(
            "demo", "seed", "--cabinets", str(DEMO_CABINETS), "--products", "6",
            "--reviews", "2", "--questions", "1",
        )  # fmt: skip
        assert seeded.returncode == 0, seeded.stderr
        api = top.start("api", "api", "--port", str(port))
        for n in (1, 2):
            top.workers.append(
                top.start(f"worker{n}", "worker", "--processes", "1", "--threads", "2")
            )
        await wait_ready(top.api_url, api)
        yield top
    finally:
        top.stop()


async def api_runs(top: Topology, *, after_id: int) -> list[dict[str, Any]]:
    """Runs with id > after_id, oldest first, as the API shows them."""
    async with top.client() as client:
        page = (await client.get("/api/v1/rag/runs", params={"limit": 200})).json()
    return sorted(
        (r for r in page["runs"] if r["run_id"] > after_id), key=lambda r: int(r["run_id"])
    )


async def wait_finished(
    top: Topology, *, after_id: int, count: int, timeout_s: float = 60
) -> list[dict[str, Any]]:
    """Poll the API until `count` runs newer than `after_id` exist and all have finished."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        runs = await api_runs(top, after_id=after_id)
        if len(runs) >= count and all(r["status"] in FINISHED for r in runs):
            return runs
        if asyncio.get_running_loop().time() > deadline:
            states = [(r["run_id"], r["cabinet_id"], r["status"]) for r in runs]
            raise AssertionError(
                f"expected {count} finished runs after {after_id}, have {states}\n"
                + top.log_tails()
            )
        await asyncio.sleep(0.2)


async def last_run_id(top: Topology) -> int:
    runs = await api_runs(top, after_id=0)
    return max((int(r["run_id"]) for r in runs), default=0)
