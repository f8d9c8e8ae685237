"""Freshness-lane benchmark: a cron every minute over 10k demo cabinets, one product edited.

    .venv/bin/python benchmarks/freshness.py [--cabinets 10000] [--repeats 5]
        [--broker-url redis://127.0.0.1:6379/6] [--data-dir DIR]

Seeds the demo source with `--cabinets` small cabinets (3 products each, with reviews,
questions and monthly sales; about 95 % active) in an embedded Postgres, with
`RAG_SCHEDULE_CRON="* * * * *"`.
A first tick queues every cabinet; they are then recorded as indexed at their current
fingerprints (as if those runs had succeeded: indexing 10k cabinets is not what is measured)
and the `--repeats` cabinets edited below are indexed for real. Then:

* a tick over the unchanged cabinets (every one skipped), `--repeats` times;
* per repeat, one product of one cabinet gets a new description (a new `updated_at`, as an
  edit in the seller's back office) and the next minute's tick runs; a real Dramatiq worker
  on Redis takes the run (a delta run) and the benchmark searches the cabinet until the new
  word is found.

`--aggregate-fingerprint` replaces the demo's fingerprint (one row of a trigger-maintained
counter) by an aggregate of each cabinet's rows (count and epoch sums per table, over the
(cabinet_id, updated_at) indexes), to show what a source without such a counter pays per tick.

Reported: the tick's own cost (claim, cabinet listing, bulk fingerprints, skip states, the
one run queued), the time from the tick's start until the edit is searchable, and the worst
case of the freshness lane: a cron wait of up to 60 s plus that. FLUSHES the Redis database
given by --broker-url.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import dramatiq
import redis
from processes import spread

from rag_indexer_service import demo
from rag_indexer_service.config import load_settings
from rag_indexer_service.db.engine import asyncpg_dsn
from rag_indexer_service.indexing.sources import BulkFingerprints
from rag_indexer_service.jobs.broker import build_broker
from rag_indexer_service.jobs.dispatch import Dispatcher, DispatchOptions
from rag_indexer_service.jobs.worker import setup_worker
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime, open_runtime
from rag_indexer_service.scheduling import Scheduler

CRON = "* * * * *"
AGGREGATE_FINGERPRINT = """
SELECT concat_ws('|',
    (SELECT concat_ws(':', count(*), sum(extract(epoch FROM updated_at)))
       FROM products WHERE cabinet_id = :cabinet_id),
    (SELECT concat_ws(':', count(*), sum(extract(epoch FROM updated_at)))
       FROM reviews WHERE cabinet_id = :cabinet_id),
    (SELECT concat_ws(':', count(*), sum(extract(epoch FROM updated_at)))
       FROM questions WHERE cabinet_id = :cabinet_id),
    (SELECT concat_ws(':', count(*), sum(extract(epoch FROM updated_at)))
       FROM sales_monthly WHERE cabinet_id = :cabinet_id)
) AS fingerprint
"""


def sources_file(data_dir: Path, *, aggregate: bool) -> Path:
    """The demo sources file, or a copy whose fingerprint aggregates each cabinet's rows."""
    demo_file = Path(demo.__file__).parent.parent / "demo_sources.toml"
    if not aggregate:
        return demo_file
    text = demo_file.read_text(encoding="utf-8")
    start = text.index('fingerprint = """')
    end = text.index('"""', start + len('fingerprint = """')) + 3
    copy = data_dir / "sources-aggregate-fingerprint.toml"
    copy.write_text(
        text[:start] + f'fingerprint = """{AGGREGATE_FINGERPRINT}"""' + text[end:],
        encoding="utf-8",
    )
    return copy


async def mark_all_indexed(rt: Runtime, conn: asyncpg.Connection, ids: list[int]) -> None:
    """As if every queued run had succeeded at the cabinet's current fingerprint."""
    assert isinstance(rt.source, BulkFingerprints)
    fingerprints: dict[int, str | None] = {}
    for start in range(0, len(ids), 2000):
        fingerprints.update(await rt.source.fingerprints(ids[start : start + 2000]))
    await conn.execute(
        "UPDATE rag_runs SET status = 'succeeded', started_at = now(), finished_at = now() "
        "WHERE status = 'queued'"
    )
    await conn.execute(
        "INSERT INTO rag_cabinets (cabinet_id, embedder_id, source_fingerprint, last_run_id, "
        "last_indexed_at, last_success_at) "
        "SELECT r.cabinet_id, $1, f.fp, max(r.id), now(), now() FROM rag_runs AS r "
        "JOIN unnest($2::bigint[], $3::text[]) AS f(cabinet_id, fp) USING (cabinet_id) "
        "GROUP BY r.cabinet_id, f.fp "
        "ON CONFLICT (cabinet_id) DO UPDATE SET source_fingerprint = EXCLUDED.source_fingerprint, "
        "last_run_id = EXCLUDED.last_run_id, embedder_id = EXCLUDED.embedder_id, "
        "last_success_at = EXCLUDED.last_success_at",
        rt.indexer.embedder.id,
        list(fingerprints),
        list(fingerprints.values()),
    )


async def edit_product(conn: asyncpg.Connection, cabinet_id: int, word: str) -> None:
    """One product's description edited now (the demo's clock: after every change so far)."""
    await conn.execute(
        "UPDATE products SET description = description || ' ' || $2::text, "
        "updated_at = greatest((SELECT max(updated_at) FROM products), "
        "(SELECT max(updated_at) FROM reviews), (SELECT max(updated_at) FROM questions), "
        "(SELECT max(updated_at) FROM sales_monthly)) + interval '1 minute' "
        "WHERE id = (SELECT min(id) FROM products WHERE cabinet_id = $1)",
        cabinet_id,
        word,
    )


async def searchable(rt: Runtime, cabinet_id: int, word: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        hits = await rt.indexer.search(cabinet_id, word, k=3)
        if any(word in hit.content for hit in hits):
            return True
        await asyncio.sleep(0.02)
    return False


async def main(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="rag-fresh-"))
    client = redis.Redis.from_url(args.broker_url)
    client.flushdb()
    results: dict[str, Any] = {
        "cabinets": args.cabinets,
        "cron": CRON,
        "fingerprint": "aggregate" if args.aggregate_fingerprint else "change counter",
    }
    worker: dramatiq.Worker | None = None
    broker: dramatiq.Broker | None = None
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        settings = load_settings(
            data_dir=data_dir,
            sources_file=sources_file(data_dir, aggregate=args.aggregate_fingerprint),
            broker_url=args.broker_url,
            embedder="hashing",
            schedule_cron=CRON,
        )
        async with open_runtime(settings) as rt:
            settings = settings.model_copy(update={"database_url": rt.db.url})
            conn = await asyncpg.connect(asyncpg_dsn(rt.db.url))
            try:
                await conn.execute(
                    "TRUNCATE rag_runs, rag_cabinets, rag_schedule_ticks, rag_documents, "
                    "rag_chunks, rag_watermarks"
                )
                seeded = await demo.seed(
                    conn, cabinets=args.cabinets, products=3, reviews=2, questions=1, seed=5
                )
                results["source"] = {
                    "products": seeded.products,
                    "reviews": seeded.reviews,
                    "questions": seeded.questions,
                    "sales_rows": seeded.sales_rows,
                }
                broker = build_broker(settings)
                setup_worker(broker, settings)
                dispatcher = Dispatcher(
                    broker, Ledger(rt.db.engine), DispatchOptions.from_settings(settings)
                )
                scheduler = Scheduler.from_runtime(rt, dispatcher, scheduler_id="bench")
                minute = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

                async def tick() -> tuple[Any, float]:
                    nonlocal minute
                    minute += dt.timedelta(minutes=1)
                    started = time.perf_counter()
                    report = await scheduler.run_tick(minute)
                    elapsed = time.perf_counter() - started
                    assert report is not None and report.error is None, report
                    return report, elapsed

                active = [
                    r["id"]
                    for r in await conn.fetch("SELECT id FROM cabinets WHERE is_active ORDER BY id")
                ]
                results["active_cabinets"] = len(active)
                cold, cold_s = await tick()
                assert cold.enqueued == len(active), cold
                results["cold_tick_s"] = round(cold_s, 2)
                await mark_all_indexed(rt, conn, active)
                client.flushdb()
                edited = active[: args.repeats]
                for cabinet_id in edited:
                    await rt.indexer.index_cabinet(cabinet_id, force=True)

                unchanged = []
                for _ in range(args.repeats):
                    report, seconds = await tick()
                    assert report.skipped == len(active) and report.enqueued == 0, report
                    unchanged.append(seconds)
                results["tick_unchanged_s"] = spread(unchanged, 3)

                worker = dramatiq.Worker(broker, worker_threads=1)
                worker.start()
                ticks, fresh = [], []
                for n, cabinet_id in enumerate(edited):
                    word = f"freshmark{n}q{os.getpid()}"
                    await edit_product(conn, cabinet_id, word)
                    started = time.perf_counter()
                    report, seconds = await tick()
                    assert report.enqueued == 1, report
                    assert await searchable(rt, cabinet_id, word, timeout_s=60.0), cabinet_id
                    fresh.append(time.perf_counter() - started)
                    ticks.append(seconds)
                results["tick_one_edit_s"] = spread(ticks, 3)
                results["searchable_after_tick_start_s"] = spread(fresh, 3)
                results["worst_case_searchable_s"] = round(60 + max(fresh), 2)
                for _ in range(250):  # the last run records its end after its commit
                    finished = await conn.fetchval(
                        "SELECT count(*) FROM rag_runs WHERE trigger = 'schedule' "
                        "AND status = 'succeeded' AND mode IS NOT NULL"
                    )
                    if finished >= args.repeats:
                        break
                    await asyncio.sleep(0.02)
                runs = await conn.fetch(
                    "SELECT extract(epoch FROM finished_at - started_at) AS s, mode, "
                    "full_reason FROM rag_runs WHERE trigger = 'schedule' "
                    "AND status = 'succeeded' AND mode IS NOT NULL "
                    "AND cabinet_id = ANY($1::bigint[]) ORDER BY id DESC LIMIT $2",
                    edited,
                    args.repeats,
                )
                results["edited_runs"] = [
                    {
                        "s": round(float(r["s"]), 3),
                        "mode": r["mode"],
                        "full_reason": r["full_reason"],
                    }
                    for r in runs
                ]
            finally:
                await conn.close()
    finally:
        if worker is not None:
            worker.stop()
        if broker is not None:
            broker.close()
        client.flushdb()
        client.close()
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cabinets", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--data-dir", default=None, help="keep the embedded database here")
    parser.add_argument(
        "--aggregate-fingerprint",
        action="store_true",
        help="fingerprint by aggregating each cabinet's rows instead of the change counter",
    )
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
