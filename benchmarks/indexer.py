"""Indexer benchmark: full index, unchanged re-index and 1 %-changed re-index of one big cabinet.

    .venv/bin/python benchmarks/indexer.py [--products 10000] [--embedder hashing]
        [--data-dir /tmp/rag-bench] [--repeats 7]

Seeds the demo source with one cabinet (products × (1 + reviews + questions) + monthly
sales documents, ~60k documents by default) in an embedded Postgres, then reports throughput,
each re-index as a share of the full index time, and peak RSS. For scale, it also times a
bare binary COPY of the same number of vectors into a scratch pgvector table. The build of
the cabinet's search indexes (a job of its own after the run, in the service) is timed on its
own, right after the full index.

"Unchanged" is measured as the service runs it (the source's fingerprint is unchanged, so the
scan is skipped), in this process and `--repeats` times as a fresh `rag-indexer index 1`
process with its own hash seed (as every CLI run and worker is), and forced (`force=True`:
every document read, rendered, hashed and compared), in this process and in a fresh one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector
from processes import run_cli, service_env, spread

from rag_indexer_service import demo
from rag_indexer_service.config import load_settings
from rag_indexer_service.db.engine import asyncpg_dsn
from rag_indexer_service.runtime import open_runtime


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def bare_copy_s(dsn: str, rows: int, dim: int) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await register_vector(conn)
        await conn.execute(
            "CREATE TEMP TABLE bench_copy (id bigint, content text, embedding vector)"
        )
        vectors = np.random.default_rng(0).random((rows, dim), dtype=np.float32)
        records = [(i, "x" * 300, vectors[i]) for i in range(rows)]
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_copy", records=records)
        return time.perf_counter() - started
    finally:
        await conn.close()


def fresh_process_runs(env: dict[str, str], repeats: int, *, force: bool) -> dict[str, object]:
    """`rag-indexer index 1 --json` in new processes: wall time, the run's own time, RSS."""
    wall_s, run_s, rss_mib, skipped, embedded = [], [], [], set(), set()
    for n in range(repeats):
        args = ["index", "1", "--json", *(["--force"] if force else [])]
        done = run_cli(args, env, hash_seed=2000 + n)
        assert done.code == 0, done
        [report] = json.loads(done.stdout)
        wall_s.append(done.wall_s)
        run_s.append(report["duration_s"])
        rss_mib.append(done.peak_rss_mib)
        skipped.add(report["scan_skipped"])
        embedded.add(report["chunks_embedded"])
    return {
        "repeats": repeats,
        "run_s": spread(run_s),
        "process_wall_s": spread(wall_s),
        "peak_rss_mib": spread(rss_mib, 0),
        "scan_skipped": sorted(skipped),
        "chunks_embedded": sorted(embedded),
    }


async def main(args: argparse.Namespace) -> dict[str, object]:
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="rag-bench-"))
    settings = load_settings(
        data_dir=data_dir, **({"embedder": args.embedder} if args.embedder else {})
    )
    async with open_runtime(settings) as rt:
        conn = await asyncpg.connect(asyncpg_dsn(rt.db.source_url))
        try:
            await demo.create_schema(conn)
            seeded = await demo.seed(
                conn, cabinets=1, products=args.products, reviews=3, questions=1, seed=7
            )
        finally:
            await conn.close()
        rss_before = peak_rss_mib()

        t0 = time.perf_counter()
        full = await rt.indexer.index_cabinet(1)
        full_s = time.perf_counter() - t0
        # what the worker queues after the run, as a job of its own
        t0 = time.perf_counter()
        built = await rt.store.refresh_ann_index(1)
        build_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        unchanged = await rt.indexer.index_cabinet(1)
        unchanged_s = time.perf_counter() - t0

        env = service_env(
            RAG_DATABASE_URL=rt.db.url,
            RAG_DATA_DIR=str(data_dir),
            RAG_EMBEDDER=settings.embedder,
            RAG_SEARCH_ANN_MIN_CHUNKS=str(settings.search_ann_min_chunks),
        )
        fresh = await asyncio.to_thread(fresh_process_runs, env, args.repeats, force=False)
        fresh_forced = await asyncio.to_thread(fresh_process_runs, env, 1, force=True)

        t0 = time.perf_counter()
        scanned = await rt.indexer.index_cabinet(1, force=True)
        scanned_s = time.perf_counter() - t0

        conn = await asyncpg.connect(asyncpg_dsn(rt.db.source_url))
        try:
            mutated = await demo.mutate(conn, share=0.01, seed=8)
        finally:
            await conn.close()
        t0 = time.perf_counter()
        changed = await rt.indexer.index_cabinet(1)
        changed_s = time.perf_counter() - t0

        dim = rt.indexer.embedder.dim
        copy_s = await bare_copy_s(asyncpg_dsn(rt.db.url), full.chunks_embedded, dim)
    if args.data_dir is None:
        shutil.rmtree(data_dir, ignore_errors=True)
    chunks = full.chunks_embedded
    return {
        "embedder": settings.embedder,
        "seeded": {
            "products": seeded.products,
            "reviews": seeded.reviews,
            "questions": seeded.questions,
            "sales_rows": seeded.sales_rows,
        },
        "documents": full.docs_seen,
        "chunks": chunks,
        "full_s": round(full_s, 2),
        "full_chunks_per_s": round(chunks / full_s),
        "search_index_build_s": round(build_s, 2) if built else None,
        "full_and_build_chunks_per_s": round(chunks / (full_s + build_s)),
        "bare_copy_s": round(copy_s, 2),
        "bare_copy_rows_per_s": round(chunks / copy_s),
        "unchanged_s": round(unchanged_s, 2),
        "unchanged_pct_of_full": round(100 * unchanged_s / full_s, 2),
        "unchanged_embedded": unchanged.chunks_embedded,
        "unchanged_scan_skipped": unchanged.scan_skipped,
        "unchanged_fresh_process": fresh,
        "unchanged_forced_fresh_process": fresh_forced,
        "unchanged_forced_scan_s": round(scanned_s, 2),
        "unchanged_forced_scan_pct_of_full": round(100 * scanned_s / full_s, 2),
        "unchanged_forced_scan_embedded": scanned.chunks_embedded,
        "mutated": {"changed": mutated.changed, "added": mutated.added, "deleted": mutated.deleted},
        "changed_s": round(changed_s, 2),
        "changed_pct_of_full": round(100 * changed_s / full_s, 2),
        "changed_report": {
            k: v for k, v in changed.to_dict().items() if k.startswith(("docs_", "chunks_"))
        },
        "peak_rss_mib_before_index": round(rss_before),
        "peak_rss_mib": round(peak_rss_mib()),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--embedder", default=None, help="RAG_EMBEDDER for this run")
    parser.add_argument("--data-dir", default=None, help="keep the embedded database here")
    parser.add_argument("--repeats", type=int, default=7, help="fresh `index` processes to time")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2, ensure_ascii=False))
