"""HTTP API benchmark: trigger-to-start latency and requests/s of one `rag-indexer api` process.

    .venv/bin/python benchmarks/api.py [--triggers 50] [--gap-s 1] [--duration-s 4]
        [--concurrency 32] [--worker-poll-ms 1000] [--broker-url redis://127.0.0.1:6379/13]

Starts a real `rag-indexer api` (uvicorn, one process) and a real `rag-indexer worker`
(one process, one thread) on embedded Postgres in a temporary directory (or RAG_DATABASE_URL)
and real Redis, with a scratch source of small cabinets. Then measures:

* trigger → running: `--triggers` manual triggers of distinct cabinets, one at a time on an
  idle worker (each waits for the previous run to finish, then `--gap-s` more). Latency = the
  run's `started_at` (set by the worker when it claims the run) minus the client's clock just
  before it sent the POST; both clocks are this machine's. Also the 202 response time.
* requests/s with the worker stopped, `--concurrency` requests in flight for `--duration-s`:
  POST trigger of cabinets without a run (new run + Redis message each), POST trigger of
  cabinets that have one (deduplicated), GET run status.

An idle Dramatiq Redis consumer polls with a backoff up to `dramatiq_worker_timeout` ms
(default 1000): `--worker-poll-ms` sets it for the worker process. The load generator shares
the machine's cores with the server. The latency phase uses httpx; the throughput phase uses a
minimal keep-alive HTTP/1.1 client on asyncio streams (`rawhttp.py`), because httpx itself
tops out at a few hundred requests/s on a slow core and would measure the client. FLUSHES the
Redis database given by --broker-url.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis
from rawhttp import RawHttp

from rag_indexer_service.config import load_settings
from rag_indexer_service.db.engine import asyncpg_dsn
from rag_indexer_service.runtime import open_runtime

SOURCES = """
[cabinets]
query = "SELECT id AS cabinet_id FROM bench_cabinets ORDER BY id"

[kinds.note]
query = "SELECT id, body FROM bench_docs WHERE cabinet_id = :cabinet_id ORDER BY id"
id_column = "id"
template = "{body}"
"""

SCHEMA = """
DROP TABLE IF EXISTS bench_cabinets, bench_docs;
CREATE TABLE bench_cabinets (id bigint PRIMARY KEY);
CREATE TABLE bench_docs (cabinet_id bigint NOT NULL, id text NOT NULL, body text NOT NULL);
INSERT INTO bench_cabinets SELECT g FROM generate_series(1, {cabinets}) AS g;
INSERT INTO bench_docs SELECT c, 'd' || d, 'Товар ' || d || ' кабинета ' || c || '.'
    FROM generate_series(1, {latency_cabinets}) AS c, generate_series(1, 3) AS d;
ANALYZE bench_cabinets;
"""

BIN = Path(sys.executable).parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def latency_summary(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
        "mean_ms": round(statistics.fmean(ms), 1),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(BIN / "rag-indexer"), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def wait_ready(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"rag-indexer api exited with {proc.returncode}")
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("rag-indexer api did not become ready")


async def wait_finished(client: httpx.AsyncClient, run_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run: dict[str, Any] = (await client.get(f"/api/v1/rag/runs/{run_id}")).json()
        if run["status"] in ("succeeded", "failed"):
            return run
        await asyncio.sleep(0.01)
    raise SystemExit(f"run {run_id} did not finish")


async def trigger_to_start(
    client: httpx.AsyncClient, conn: asyncpg.Connection, cabinets: range, gap_s: float
) -> dict[str, Any]:
    to_start: list[float] = []
    accepted: list[float] = []
    for cabinet_id in cabinets:
        await asyncio.sleep(gap_s)  # the worker's consumer backs off while it is idle
        sent_at = time.time()
        response = await client.post(f"/api/v1/rag/index/{cabinet_id}")
        accepted.append(time.time() - sent_at)
        assert response.status_code == 202, response.text
        run = await wait_finished(client, response.json()["run_id"])
        assert run["status"] == "succeeded", run
        started = await conn.fetchval(
            "SELECT extract(epoch FROM started_at) FROM rag_runs WHERE id = $1", run["run_id"]
        )
        to_start.append(float(started) - sent_at)
    return {
        "runs": len(to_start),
        "trigger_to_running": latency_summary(to_start),
        "trigger_202": latency_summary(accepted),
    }


Request = Callable[[RawHttp, int], Awaitable[bool]]


async def throughput(
    port: int, key: str, concurrency: int, duration_s: float, request: Request
) -> dict[str, Any]:
    done = failed = counter = 0
    deadline = time.perf_counter() + duration_s

    async def user() -> None:
        nonlocal done, failed, counter
        http = RawHttp(port, key)
        try:
            while time.perf_counter() < deadline:
                counter += 1
                if await request(http, counter):
                    done += 1
                else:
                    failed += 1
        finally:
            http.close()

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"requests_per_s": round(done / elapsed), "ok": done, "failed": failed}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="rag-api-bench-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    sources = data_dir / "bench_sources.toml"
    sources.write_text(SOURCES)
    logs = data_dir / "processes.log"
    key = secrets.token_urlsafe(24)
    redis.Redis.from_url(args.broker_url).flushdb()
    settings = load_settings(data_dir=data_dir, sources_file=sources, broker_url=args.broker_url)
    latency_cabinets = args.triggers + 1
    total_cabinets = latency_cabinets + args.new_cabinets
    port = free_port()
    results: dict[str, Any] = {"cabinets": total_cabinets}
    async with open_runtime(settings) as rt:
        conn = await asyncpg.connect(asyncpg_dsn(rt.db.url))
        await conn.execute("TRUNCATE rag_runs, rag_cabinets, rag_documents, rag_chunks")
        await conn.execute(
            SCHEMA.format(cabinets=total_cabinets, latency_cabinets=latency_cabinets)
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        env.update(
            RAG_DATA_DIR=str(data_dir),
            RAG_SOURCES_FILE=str(sources),
            RAG_BROKER_URL=args.broker_url,
            RAG_API_KEYS=key,
            RAG_LOG_LEVEL=args.log_level,
            dramatiq_worker_timeout=str(args.worker_poll_ms),
        )
        if settings.database_url:
            env["RAG_DATABASE_URL"] = settings.database_url
        api = start(["api", "--port", str(port)], env, logs)
        worker = start(["worker", "--processes", "1", "--threads", "1"], env, logs)
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=64)
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                headers={"X-API-Key": key},
                limits=limits,
                timeout=30,
            ) as client:
                await wait_ready(client, api)
                await trigger_to_start(client, conn, range(1, 2), 0)  # warm-up: worker connects
                results["latency"] = await trigger_to_start(
                    client, conn, range(2, latency_cabinets + 1), args.gap_s
                )
                stop(worker)
                results["throughput"] = await measure_throughput(
                    port, key, args, range(latency_cabinets + 1, total_cabinets + 1)
                )
        finally:
            stop(worker)
            stop(api)
            await conn.close()
    results["settings"] = {
        "concurrency": args.concurrency,
        "duration_s": args.duration_s,
        "worker_poll_ms": args.worker_poll_ms,
        "gap_s": args.gap_s,
        "log_level": args.log_level,
        "cpus": os.cpu_count(),
    }
    if args.data_dir is None:
        shutil.rmtree(data_dir, ignore_errors=True)
    redis.Redis.from_url(args.broker_url).flushdb()
    return results


async def measure_throughput(
    port: int, key: str, args: argparse.Namespace, fresh: range
) -> dict[str, Any]:
    fresh_ids = iter(fresh)
    run_ids: list[int] = []

    async def trigger_new(http: RawHttp, _: int) -> bool:
        cabinet_id = next(fresh_ids, None)
        if cabinet_id is None:
            return False
        status, body = await http.request("POST", f"/api/v1/rag/index/{cabinet_id}")
        if status != 202:
            return False
        run = json.loads(body)
        run_ids.append(run["run_id"])
        return not run["deduplicated"]

    async def trigger_again(http: RawHttp, n: int) -> bool:
        status, body = await http.request("POST", f"/api/v1/rag/index/{fresh[n % len(run_ids)]}")
        return status == 202 and bool(json.loads(body)["deduplicated"])

    async def run_status(http: RawHttp, n: int) -> bool:
        status, _ = await http.request("GET", f"/api/v1/rag/runs/{run_ids[n % len(run_ids)]}")
        return status == 200

    results = {}
    for name, request in (
        ("trigger_new_run", trigger_new),
        ("trigger_deduplicated", trigger_again),
        ("run_status", run_status),
    ):
        results[name] = await throughput(port, key, args.concurrency, args.duration_s, request)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triggers", type=int, default=50)
    parser.add_argument("--new-cabinets", type=int, default=6000)
    parser.add_argument("--duration-s", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--worker-poll-ms", type=int, default=1000)
    parser.add_argument("--gap-s", type=float, default=1.0, help="Idle time before a trigger.")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--broker-url",
        default=os.environ.get("RAG_BENCH_BROKER_URL", "redis://127.0.0.1:6379/13"),
    )
    parser.add_argument("--data-dir")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
