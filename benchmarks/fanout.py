"""Scheduler fan-out benchmark: one tick over N cabinets against real Redis and Postgres.

    .venv/bin/python benchmarks/fanout.py [--cabinets 100000]
        [--broker-url redis://127.0.0.1:6379/12] [--send-loop 20000] [--data-dir DIR]
        [--repeats 7]

Creates N cabinets in a scratch source table (embedded Postgres in a temporary directory, or
RAG_DATABASE_URL), then times:

* cold fan-out: nothing indexed yet, every cabinet gets a run and a message;
* warm fan-out, unchanged: every cabinet indexed at the current fingerprint, all skipped;
  in this process, then `--repeats` times by a fresh `rag-indexer scheduler --once` process
  (its own hash seed, as in the compose topology): p50/p95 of the fan-out and of the whole
  process, and the process's peak RSS;
* warm fan-out, 1 % changed: fingerprints of 1 % of the cabinets changed;
* `Dispatcher.enqueue_cabinets` alone (ledger rows + pipelined messages) versus a plain
  `actor.send` loop (messages only, no ledger), in cabinets (messages) per second.

Targets (issue 4): 100k cabinets fan out in <= 10 s; enqueue >= 5k/s. FLUSHES the Redis
database given by --broker-url before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import redis
from processes import run_cli, service_env, spread

from rag_indexer_service.config import load_settings
from rag_indexer_service.db.engine import asyncpg_dsn
from rag_indexer_service.jobs.broker import ACTOR_SCHEDULED, QUEUE_SCHEDULED, build_broker
from rag_indexer_service.jobs.dispatch import Dispatcher, DispatchOptions
from rag_indexer_service.jobs.worker import setup_worker
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime, open_runtime
from rag_indexer_service.scheduling import FanOutReport, Scheduler, TickClaims

SOURCES = """
[cabinets]
query = "SELECT id AS cabinet_id FROM bench_cabinets WHERE active ORDER BY id"
fingerprint = "SELECT fp FROM bench_cabinets WHERE id = :cabinet_id"

[kinds.note]
query = "SELECT id, body FROM bench_docs WHERE cabinet_id = :cabinet_id ORDER BY id"
id_column = "id"
template = "{body}"
"""

SCHEMA = """
DROP TABLE IF EXISTS bench_cabinets, bench_docs;
CREATE TABLE bench_cabinets (id bigint PRIMARY KEY, active boolean NOT NULL DEFAULT true,
                             fp text NOT NULL);
CREATE TABLE bench_docs (cabinet_id bigint NOT NULL, id text NOT NULL, body text NOT NULL);
INSERT INTO bench_cabinets (id, fp) SELECT g, 'v1' FROM generate_series(1, $1) AS g;
ANALYZE bench_cabinets;
"""


def rate(count: int, seconds: float) -> int:
    return round(count / seconds) if seconds > 0 else 0


async def tick(scheduler: Scheduler) -> tuple[FanOutReport, float]:
    started = time.perf_counter()
    report = await scheduler.run_tick(dt.datetime.now(dt.UTC))
    elapsed = time.perf_counter() - started
    assert report is not None and report.error is None, report
    return report, elapsed


def summary(report: FanOutReport, seconds: float) -> dict[str, Any]:
    return {
        "seconds": round(seconds, 2),
        "cabinets_per_s": rate(report.seen, seconds),
        "seen": report.seen,
        "enqueued": report.enqueued,
        "skipped": report.skipped,
        "already_active": report.already_active,
    }


async def mark_all_indexed(rt: Runtime, conn: asyncpg.Connection) -> None:
    """As if every queued run had succeeded at the current fingerprint."""
    await conn.execute(
        "UPDATE rag_runs SET status = 'succeeded', finished_at = now() WHERE status = 'queued'"
    )
    await conn.execute(
        "INSERT INTO rag_cabinets (cabinet_id, embedder_id, source_fingerprint, last_run_id, "
        "last_success_at) SELECT r.cabinet_id, $1, $2 || c.fp, max(r.id), now() FROM rag_runs r "
        "JOIN bench_cabinets c ON c.id = r.cabinet_id GROUP BY r.cabinet_id, c.fp "
        "ON CONFLICT (cabinet_id) DO UPDATE SET source_fingerprint = EXCLUDED.source_fingerprint, "
        "last_run_id = EXCLUDED.last_run_id, embedder_id = EXCLUDED.embedder_id",
        rt.indexer.embedder.id,
        f"{rt.source.config_digest}/",  # stored fingerprints carry the sources file's digest
    )


async def process_ticks(
    rt: Runtime, env: dict[str, str], cabinets: int, repeats: int
) -> dict[str, Any]:
    """Warm fan-outs by fresh scheduler processes; each must skip every cabinet."""
    claims = TickClaims(rt.db.engine)
    fan_out_s, wall_s, rss_mib = [], [], []
    for n in range(repeats):
        tick_at = dt.datetime(2030, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=6 * n)
        args = ["scheduler", "--once", "--tick-at", tick_at.isoformat()]
        done = await asyncio.to_thread(run_cli, args, env, hash_seed=1000 + n)
        tick = await claims.get(tick_at)
        assert done.code == 0 and tick is not None and tick.finished_at is not None, done
        assert tick.skipped == cabinets and tick.enqueued == 0, tick
        fan_out_s.append((tick.finished_at - tick.claimed_at).total_seconds())
        wall_s.append(done.wall_s)
        rss_mib.append(done.peak_rss_mib)
    p50 = spread(fan_out_s)["p50"]
    return {
        "repeats": repeats,
        "fan_out_s": spread(fan_out_s),
        "cabinets_per_s_at_p50": rate(cabinets, p50),
        "process_wall_s": spread(wall_s),
        "peak_rss_mib": spread(rss_mib, 0),
    }


def send_loop(broker_url: str, settings: Any, count: int) -> float:
    broker = build_broker(settings)
    setup_worker(broker, settings)
    actor = broker.get_actor(ACTOR_SCHEDULED)
    started = time.perf_counter()
    for n in range(count):
        actor.send(n)
    elapsed = time.perf_counter() - started
    broker.close()
    return elapsed


async def main(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="rag-fanout-"))
    sources = data_dir / "bench_sources.toml"
    data_dir.mkdir(parents=True, exist_ok=True)
    sources.write_text(SOURCES)
    settings = load_settings(data_dir=data_dir, sources_file=sources, broker_url=args.broker_url)
    client = redis.Redis.from_url(args.broker_url)
    client.flushdb()
    broker = build_broker(settings)
    results: dict[str, Any] = {"cabinets": args.cabinets}
    try:
        async with open_runtime(settings) as rt:
            conn = await asyncpg.connect(asyncpg_dsn(rt.db.url))
            try:
                await conn.execute(
                    "TRUNCATE rag_runs, rag_cabinets, rag_schedule_ticks, rag_documents"
                )
                for statement in SCHEMA.replace("$1", str(args.cabinets)).split(";"):
                    if statement.strip():
                        await conn.execute(statement)
                dispatcher = Dispatcher(
                    broker, Ledger(rt.db.engine), DispatchOptions.from_settings(settings)
                )
                scheduler = Scheduler.from_runtime(rt, dispatcher, scheduler_id="bench")

                report, seconds = await tick(scheduler)
                messages = client.hlen(f"dramatiq:{QUEUE_SCHEDULED}.msgs")
                results["cold_fan_out"] = {**summary(report, seconds), "messages": messages}

                await mark_all_indexed(rt, conn)
                client.flushdb()
                report, seconds = await tick(scheduler)
                results["warm_fan_out_unchanged"] = summary(report, seconds)
                env = service_env(
                    RAG_DATABASE_URL=rt.db.url,
                    RAG_SOURCES_FILE=str(sources),
                    RAG_BROKER_URL=args.broker_url,
                    RAG_DATA_DIR=str(data_dir),
                )
                results["warm_fan_out_unchanged_by_scheduler_process"] = await process_ticks(
                    rt, env, args.cabinets, args.repeats
                )

                await conn.execute("UPDATE bench_cabinets SET fp = 'v2' WHERE id % 100 = 0")
                report, seconds = await tick(scheduler)
                results["warm_fan_out_1pct_changed"] = summary(report, seconds)

                client.flushdb()
                ids = list(range(10**12, 10**12 + args.cabinets))
                started = time.perf_counter()
                bulk = await dispatcher.enqueue_cabinets(ids, "schedule")
                seconds = time.perf_counter() - started
                results["enqueue_cabinets"] = {
                    "seconds": round(seconds, 2),
                    "cabinets_per_s": rate(bulk.enqueued, seconds),
                    "enqueued": bulk.enqueued,
                }
            finally:
                await conn.close()
        client.flushdb()
        seconds = await asyncio.to_thread(send_loop, args.broker_url, settings, args.send_loop)
        results["actor_send_loop"] = {
            "seconds": round(seconds, 2),
            "messages_per_s": rate(args.send_loop, seconds),
            "messages": args.send_loop,
        }
    finally:
        broker.close()
        client.flushdb()
        client.close()
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cabinets", type=int, default=100_000)
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--send-loop", type=int, default=20_000, help="messages for actor.send")
    parser.add_argument("--data-dir", default=None, help="keep the embedded database here")
    parser.add_argument("--repeats", type=int, default=7, help="scheduler processes to time")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
