"""Real `rag-indexer scheduler` processes against real Redis and Postgres."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg
import redis

from rag_indexer_service.jobs.broker import QUEUE_SCHEDULED
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime
from rag_indexer_service.scheduling import TickClaims
from tests.helpers import wait_for_run
from tests.scheduling.conftest import add_cabinets, scheduled_runs

Spawn = Callable[..., subprocess.Popen[bytes]]


def rag_indexer(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("rag-indexer")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def wait_for_exit(proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    return await asyncio.to_thread(proc.wait, timeout_s)


async def wait_for_log(path: Path, needle: str, timeout_s: float = 30) -> str:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while needle not in (log := path.read_text()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{needle!r} not logged within {timeout_s}s:\n{log}")
        await asyncio.sleep(0.1)
    return log


async def test_scheduler_once_fans_out_through_real_redis_to_a_real_worker(
    spawn: Spawn,
    worker_env: dict[str, str],
    broker_url: str,
    runtime: Runtime,
    source_conn: asyncpg.Connection,
) -> None:
    await add_cabinets(source_conn, range(1, 4), docs=5)

    code = await wait_for_exit(spawn("scheduler", "--once"), timeout_s=60)

    assert code == 0
    runs = await scheduled_runs(runtime)
    assert sorted(r.cabinet_id for r in runs) == [1, 2, 3]
    assert all(r.status == "queued" and r.message_key for r in runs)
    client = redis.Redis.from_url(broker_url)
    assert client.hlen(f"dramatiq:{QUEUE_SCHEDULED}.msgs") == 3
    client.close()

    spawn("worker", "--processes", "1", "--threads", "2")
    for run in runs:
        done = await wait_for_run(Ledger(runtime.db.engine), run.id, timeout_s=60)
        assert done.status == "succeeded" and done.counters["docs_added"] == 5

    shown = rag_indexer("status", "--json", env=worker_env)
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["ticks"][0]["cabinets_enqueued"] == 3
    assert status["runs_by_status"]["succeeded"] == 3


async def test_scheduler_daemon_fans_out_logs_next_fire_times_and_stops_on_sigterm(
    spawn: Spawn,
    worker_env: dict[str, str],
    runtime: Runtime,
    source_conn: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    # Every minute: the tick of the current minute was "missed" at start and runs at once.
    await add_cabinets(source_conn, range(1, 5), docs=1)
    log_path = tmp_path / "scheduler.log"
    with log_path.open("wb") as log_file:
        proc = spawn(
            "scheduler",
            env={**worker_env, "RAG_SCHEDULE_CRON": "* * * * *"},
            stderr=log_file,
        )
        log = await wait_for_log(log_path, "next fire times:")
        await wait_for_log(log_path, "done:")

        os.killpg(proc.pid, signal.SIGTERM)
        code = await wait_for_exit(proc, timeout_s=10)

    log = log_path.read_text()
    assert code == 0, log
    started = next(line for line in log.splitlines() if "next fire times:" in line)
    assert "cron * * * * * (UTC)" in started and started.count(":00+00:00") == 3
    assert "SIGTERM received" in log and "stopped" in log.splitlines()[-1]
    assert sorted(r.cabinet_id for r in await scheduled_runs(runtime)) == [1, 2, 3, 4]
    ticks = await TickClaims(runtime.db.engine).recent()
    assert len(ticks) == 1 and ticks[0].enqueued == 4 and ticks[0].finished_at is not None

    shown = rag_indexer("status", "--json", env=worker_env)
    scheduler = json.loads(shown.stdout)["schedulers"][0]
    assert scheduler["state"] == "stopped" and scheduler["last_reaper_at"] is not None
    assert scheduler["last_tick_at"] == ticks[0].tick_at.isoformat()


def test_an_invalid_cron_is_a_one_line_error(worker_env: dict[str, str]) -> None:
    result = rag_indexer("scheduler", env={**worker_env, "RAG_SCHEDULE_CRON": "every six hours"})

    assert result.returncode == 1
    assert result.stderr == (
        "error: invalid configuration: RAG_SCHEDULE_CRON: 'every six hours' has 3 fields; "
        "expected 5 (minute hour day month weekday)\n"
    )


def test_the_scheduler_needs_a_broker(worker_env: dict[str, str]) -> None:
    env = {k: v for k, v in worker_env.items() if k != "RAG_BROKER_URL"}

    result = rag_indexer("scheduler", "--once", env=env)

    assert result.returncode == 1
    assert result.stderr.startswith("error: RAG_BROKER_URL is not set")
    assert result.stderr.count("\n") == 1
