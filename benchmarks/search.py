"""Search benchmark: hybrid top-k latency (p50/p95/p99), throughput and ANN recall at size.

    .venv/bin/python benchmarks/search_data.py --data-dir /work/bench-data-search   # once
    .venv/bin/python benchmarks/search.py --data-dir /work/bench-data-search
        [--cabinets 1 2] [--queries 300] [--k 10] [--concurrency 8] [--duration-s 15]
        [--recall-queries 40] [--broker-url redis://127.0.0.1:6379/6]

Reads the database `search_data.py` built (cabinet 1: ~250k chunks, cabinet 2: 20k, in a
table of ≥ 1M chunks). For each cabinet:

* in-process: `RAGIndexer.search` (embed the query, then the store's hybrid search), one
  client, `--queries` queries after a warm-up; then `--concurrency` clients for
  `--duration-s` on a pool of that size;
* HTTP: a real `rag-indexer api` process (uvicorn, one worker) started here, queried from
  this process over keep-alive connections (`rawhttp.py`: the load generator shares the 2
  cores with the server and Postgres, and httpx would take ~1.7 ms of them a request): one
  client, then `--concurrency` clients; for the one client also the `took_ms` the API
  reports (the search alone, without HTTP, auth and JSON);
* for each 8-client phase, the CPU time a search cost (ms of CPU per search) of the
  Postgres server (postmaster and backends), of the API process and of this process, so
  a throughput figure says which of them the 2 cores went to;
* recall@k of the vector side (the path searches take: ANN when the cabinet has its index)
  against an exact scan of the same cabinet, over `--recall-queries` queries.

Queries are 1–3 words drawn from random chunks of the cabinet (so most match something),
plus a few fixed shopper questions, in a seeded order. Reports peak RSS of this process and
of the API process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from rawhttp import RawHttp
from sqlalchemy import text

from rag_indexer_service.config import load_settings
from rag_indexer_service.runtime import Runtime, open_runtime

BIN = Path(sys.executable).parent
FIXED = (
    "кроссовки для бега",
    "маломерит размер",
    "доставка быстрая",
    "качество ткани",
    "подойдёт ли для ребёнка",
    "зарядка",
)
WORD = re.compile(r"[А-Яа-яЁёA-Za-z]{4,}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
    }


async def make_queries(rt: Runtime, cabinet_id: int, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    async with rt.db.engine.connect() as conn:
        total = await conn.scalar(
            text("SELECT chunk_count FROM rag_cabinets WHERE cabinet_id = :c"), {"c": cabinet_id}
        )
        offsets = sorted(rng.randrange(int(total or 1)) for _ in range(n))
        # the keys in primary-key order, then the drawn ones' contents (an OFFSET per query
        # walked up to 250k index entries each: minutes per cabinet)
        keys = (
            await conn.execute(
                text(
                    "SELECT kind, doc_id, chunk_no FROM rag_chunks WHERE cabinet_id = :c"
                    " AND generation = (SELECT active_generation FROM rag_cabinets"
                    " WHERE cabinet_id = :c) ORDER BY kind, doc_id, chunk_no"
                ),
                {"c": cabinet_id},
            )
        ).all()
        contents = [
            await conn.scalar(
                text(
                    "SELECT content FROM rag_chunks WHERE cabinet_id = :c AND kind = :k"
                    " AND doc_id = :d AND chunk_no = :n"
                    " AND generation = (SELECT active_generation FROM rag_cabinets"
                    " WHERE cabinet_id = :c)"
                ),
                {"c": cabinet_id, "k": kind, "d": doc_id, "n": chunk_no},
            )
            for kind, doc_id, chunk_no in (keys[min(o, len(keys) - 1)] for o in offsets)
        ]
    queries = list(FIXED)
    for content in contents[len(FIXED) :]:
        words = WORD.findall(content or "") or ["товар"]
        start = rng.randrange(len(words))
        queries.append(" ".join(words[start : start + rng.randint(1, 3)]))
    rng.shuffle(queries)
    return queries


async def sequential(call: Callable[[str], Awaitable[Any]], queries: list[str]) -> list[float]:
    for q in queries[:20]:  # warm-up: caches, prepared statements, connections
        await call(q)
    took = []
    for q in queries:
        t0 = time.perf_counter()
        await call(q)
        took.append(time.perf_counter() - t0)
    return took


class CpuMeter:
    """CPU seconds spent over a phase by named groups of processes: each group a root
    process and those of its children no earlier group holds (children that exit during
    the phase are not counted)."""

    def __init__(self, roots: dict[str, int]) -> None:
        self._roots = roots
        self._start = self._read()

    def _read(self) -> dict[int, tuple[str, float]]:
        seen: dict[int, tuple[str, float]] = {}
        for group, pid in self._roots.items():
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    seen.setdefault(proc.pid, (group, t.user + t.system))
        return seen

    def ms_per(self, count: int) -> dict[str, float]:
        """CPU ms each group spent since the meter started, per one of `count` operations."""
        spent = dict.fromkeys(self._roots, 0.0)
        for pid, (group, cpu_s) in self._read().items():
            before = self._start.get(pid)
            spent[group] += cpu_s - (before[1] if before is not None else 0.0)
        return {g: round(s * 1000 / max(1, count), 2) for g, s in spent.items()}


def postmaster_pid(data_dir: str) -> int:
    pid_file = Path(data_dir) / "pg" / "postmaster.pid"
    return int(pid_file.read_text().split("\n", 1)[0])


async def concurrent(
    call: Callable[[str], Awaitable[Any]],
    queries: list[str],
    clients: int,
    duration_s: float,
    processes: dict[str, int],
) -> dict[str, Any]:
    """`clients` clients calling `call` for `duration_s`; with the CPU ms a search cost each
    group of `processes` (and this process)."""
    took: list[float] = []
    deadline = time.perf_counter() + duration_s

    async def client(n: int) -> None:
        i = n
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            await call(queries[i % len(queries)])
            took.append(time.perf_counter() - t0)
            i += clients

    meter = CpuMeter({**processes, "this_process": os.getpid()})
    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "searches_per_s": round(len(took) / elapsed, 1),
        **summary(took),
        "cpu_ms_per_search": meter.ms_per(len(took)),
    }


async def recall(rt: Runtime, cabinet_id: int, queries: list[str], k: int) -> dict[str, Any]:
    """recall@k of the vector side against an exact scan, by identity (the same chunks) and
    by distance (ann-benchmarks' definition: hits no farther than the exact k-th, so a
    duplicate vector in place of its twin counts)."""
    found = near = 0
    for q in queries:
        vector = (await rt.indexer.embedder.embed([q]))[0]
        hits = await rt.store.search(cabinet_id, query_text="", query_vector=vector, k=k)
        async with rt.db.engine.connect() as conn:
            gen = await conn.scalar(
                text("SELECT active_generation FROM rag_cabinets WHERE cabinet_id = :c"),
                {"c": cabinet_id},
            )
            exact = (
                await conn.execute(
                    text(
                        "SELECT kind, doc_id, chunk_no, 1 - (embedding <=> CAST(:q AS vector)) "
                        "FROM rag_chunks WHERE cabinet_id = :c AND generation = :g "
                        "ORDER BY embedding <=> CAST(:q AS vector) LIMIT :k"
                    ),
                    {"c": cabinet_id, "g": gen, "q": np.asarray(vector, dtype=np.float32), "k": k},
                )
            ).all()
        truth = {tuple(r[:3]) for r in exact}
        found += len(truth & {(h.kind, h.doc_id, h.chunk_no) for h in hits})
        kth = float(exact[-1][3]) if exact else 1.0
        near += sum(1 for h in hits if h.similarity >= kth - 1e-6)
    return {
        "recall_at_k": round(found / (k * len(queries)), 4),
        "recall_at_k_by_distance": round(near / (k * len(queries)), 4),
        "queries": len(queries),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PeakRss:
    """Samples a process's RSS every 50 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.peak_mib = max(self.peak_mib, self._proc.memory_info().rss / 2**20)
            except psutil.Error:
                return

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak_mib)


async def http_phase(
    args: argparse.Namespace, queries: dict[int, list[str]]
) -> dict[str, dict[str, Any]]:
    port, key = free_port(), secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "RAG_DATA_DIR": args.data_dir,
        "RAG_API_KEYS": key,
        "RAG_BROKER_URL": args.broker_url,
        "RAG_LOG_LEVEL": "WARNING",
    }
    log = Path(args.data_dir) / "bench-api.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(BIN / "rag-indexer"), "api", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    rss = PeakRss(proc.pid)
    results: dict[str, dict[str, Any]] = {}
    idle: list[RawHttp] = []  # one keep-alive connection per client under way

    async def request(method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        http = idle.pop() if idle else RawHttp(port, key)
        try:
            answer = await http.request(method, path, body)
        except BaseException:
            http.close()
            raise
        idle.append(http)
        return answer

    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"rag-indexer api did not start (see {log})")
            try:
                if (await request("GET", "/readyz"))[0] == 200:
                    break
            except OSError:
                pass
            await asyncio.sleep(0.2)
        for cabinet_id, qs in queries.items():
            answers: list[bytes] = []

            async def call(q: str, c: int = cabinet_id, answers: list[bytes] = answers) -> None:
                body = json.dumps({"query": q, "k": args.k}).encode()
                status, answer = await request("POST", f"/api/v1/rag/cabinets/{c}/search", body)
                if status != 200:
                    raise SystemExit(f"search answered {status}: {answer[:300]!r}")
                answers.append(answer)

            single = summary(await sequential(call, qs))
            # the route's own `took_ms` (search only: no HTTP, auth or JSON), read after
            # the timed loop so that parsing it costs the client nothing
            took_s = [json.loads(a)["took_ms"] / 1000 for a in answers[-len(qs) :]]
            results[str(cabinet_id)] = {
                "single_client": single,
                "single_client_server_took": summary(took_s),
                f"{args.concurrency}_clients": await concurrent(
                    call,
                    qs,
                    args.concurrency,
                    args.duration_s,
                    {"postgres": postmaster_pid(args.data_dir), "api": proc.pid},
                ),
            }
    finally:
        for http in idle:
            http.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        results["api_peak_rss_mib"] = {"value": rss.stop()}
    return results


async def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings(data_dir=Path(args.data_dir))
    report: dict[str, Any] = {"k": args.k}
    queries: dict[int, list[str]] = {}
    async with open_runtime(settings, pool_size=args.concurrency) as rt:
        async with rt.db.engine.connect() as conn:
            report["table_chunks"] = await conn.scalar(text("SELECT count(*) FROM rag_chunks"))
        for cabinet_id in args.cabinets:
            state = await rt.store.cabinet_state(cabinet_id)
            qs = await make_queries(rt, cabinet_id, args.queries, seed=cabinet_id)
            queries[cabinet_id] = qs

            async def call(q: str, c: int = cabinet_id) -> None:
                await rt.indexer.search(c, q, k=args.k)

            report[f"cabinet_{cabinet_id}"] = {
                "chunks": None if state is None else state.chunk_count,
                "in_process_single_client": summary(await sequential(call, qs)),
                f"in_process_{args.concurrency}_clients": await concurrent(
                    call,
                    qs,
                    args.concurrency,
                    args.duration_s,
                    {"postgres": postmaster_pid(args.data_dir)},
                ),
                "vector_side": await recall(rt, cabinet_id, qs[: args.recall_queries], args.k),
            }
    report["in_process_peak_rss_mib"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    report["http"] = await http_phase(args, queries)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--cabinets", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration-s", type=float, default=15.0)
    parser.add_argument("--recall-queries", type=int, default=40)
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/6")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2, ensure_ascii=False))
