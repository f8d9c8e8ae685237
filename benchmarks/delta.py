"""Delta-run benchmark: 1 %-changed and unchanged re-index of one demo cabinet (issue 13).

    .venv/bin/python benchmarks/delta.py --products 3500 --embedder openai --repeats 5
    .venv/bin/python benchmarks/delta.py --products 40000 --embedder hashing --repeats 3

Seeds the demo source with one cabinet (products × 5 + monthly sales documents: 3500 ≈ 20k
documents, 40000 ≈ 235k) in an embedded Postgres and indexes it in full. Then, per repeat,
`demo.mutate(share=0.01)` changes, adds and deletes about 1 % of the rows (and corrects a day
of 1 % of the sales series) and one run indexes them (a delta run: the demo sources file has
changed_query/ids_query for every kind). Finally
a new process opens the runtime and indexes the unchanged cabinet (fingerprint skip), timed
from the call (not interpreter start). `--embedder openai` embeds through
tests/indexing/fake_embedding_api.py served on 127.0.0.1 (a real HTTP server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from rag_indexer_service import demo
from rag_indexer_service.config import Settings, load_settings
from rag_indexer_service.db.engine import asyncpg_dsn
from rag_indexer_service.runtime import open_runtime

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.indexing.fake_embedding_api import FakeEmbeddingAPI  # noqa: E402

DIM = 256


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_settings(data_dir: Path, embedder: str, api: FakeEmbeddingAPI | None) -> Settings:
    extra: dict[str, Any] = {"embedder": embedder, "embedding_dim": DIM}
    if api is not None:
        extra.update(openai_base_url=api.url, openai_api_key=api.api_key, openai_model="fake")
    return load_settings(data_dir=data_dir, **extra)


async def probe(data_dir: Path, embedder: str, url: str | None) -> dict[str, Any]:
    """In a fresh process: one run of cabinet 1, timed from the call."""
    extra: dict[str, Any] = {"embedder": embedder, "embedding_dim": DIM}
    if url is not None:
        extra.update(openai_base_url=url, openai_api_key="test-key", openai_model="fake")
    async with open_runtime(load_settings(data_dir=data_dir, **extra)) as rt:
        t0 = time.perf_counter()
        report = await rt.indexer.index_cabinet(1)
        return {"s": time.perf_counter() - t0, "mode": report.mode}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="rag-delta-"))
    api = FakeEmbeddingAPI(models={"fake": DIM}) if args.embedder == "openai" else None
    if api is not None:
        api.start()
    try:
        settings = bench_settings(data_dir, args.embedder, api)
        async with open_runtime(settings) as rt:
            conn = await asyncpg.connect(asyncpg_dsn(rt.db.source_url))
            try:
                await demo.create_schema(conn)
                seeded = await demo.seed(
                    conn, cabinets=1, products=args.products, reviews=3, questions=1, seed=7
                )
                t0 = time.perf_counter()
                full = await rt.indexer.index_cabinet(1)
                full_s = time.perf_counter() - t0
                await rt.store.refresh_ann_index(1)  # the worker's job after the run
                rss_after_full = peak_rss_mib()
                runs: list[dict[str, Any]] = []
                for repeat in range(args.repeats):
                    mutated = await demo.mutate(conn, share=0.01, seed=100 + repeat)
                    requests_before = len(api.ok_hits()) if api is not None else 0
                    t0 = time.perf_counter()
                    report = await rt.indexer.index_cabinet(1)
                    elapsed = time.perf_counter() - t0
                    runs.append(
                        {
                            "s": round(elapsed, 3),
                            "mode": report.mode,
                            "rows_mutated": mutated.changed + mutated.added + mutated.deleted,
                            "docs_seen": report.docs_seen,
                            "written": report.docs_added
                            + report.docs_updated
                            + report.docs_metadata_only,
                            "deleted": report.docs_deleted,
                            "chunks_embedded": report.chunks_embedded,
                            "embedding_requests": (
                                len(api.ok_hits()) - requests_before if api is not None else 0
                            ),
                        }
                    )
            finally:
                await conn.close()
        fresh = []
        for _ in range(args.repeats):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--probe",
                    "--data-dir",
                    str(data_dir),
                    "--embedder",
                    args.embedder,
                    *(["--api-url", api.url] if api is not None else []),
                ],
                capture_output=True,
                text=True,
                check=True,
                env={k: v for k, v in os.environ.items() if not k.startswith("RAG_")},
            )
            fresh.append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        if api is not None:
            api.stop()
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    times = [r["s"] for r in runs]
    fresh_ms = [1000 * r["s"] for r in fresh]
    return {
        "embedder": args.embedder,
        "documents": full.docs_seen,
        "seeded_products": seeded.products,
        "full_s": round(full_s, 2),
        "changed_1pct_runs": runs,
        "changed_1pct_p50_s": round(statistics.median(times), 3),
        "changed_1pct_p95_s": round(percentile(times, 0.95), 3),
        "unchanged_fresh_process_modes": sorted({r["mode"] for r in fresh}),
        "unchanged_fresh_process_p50_ms": round(statistics.median(fresh_ms), 1),
        "unchanged_fresh_process_p95_ms": round(percentile(fresh_ms, 0.95), 1),
        "peak_rss_mib_after_full": round(rss_after_full),
        "peak_rss_mib": round(peak_rss_mib()),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=3500)
    parser.add_argument("--embedder", choices=("hashing", "openai"), default="openai")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", default=None, help="keep the embedded database here")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--api-url", default=None, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.probe:
        print(json.dumps(asyncio.run(probe(Path(ns.data_dir), ns.embedder, ns.api_url))))
    else:
        print(json.dumps(asyncio.run(main(ns)), indent=2, ensure_ascii=False))
