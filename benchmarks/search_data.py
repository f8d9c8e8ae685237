"""Builds the search benchmark's data: a ≥ 1M-chunk `rag_chunks` with a big and a small cabinet.

    .venv/bin/python benchmarks/search_data.py --data-dir /work/bench-data-search
        [--products 42500] [--small-chunks 20000] [--fillers 3]

Cabinet 1 is a demo cabinet (`--products` products with reviews, questions and sales, about
250k chunks) indexed by the real indexer with the default embedder (navec). Cabinet 2 (the
small one) gets the first `--small-chunks` chunks of cabinet 1, and cabinets 3.. (`--fillers`)
a copy of all of cabinet 1 with slightly perturbed vectors, both written through `Store.write_batch`
(the indexer's own write path: COPY, full-text computed by Postgres), so every cabinet's rows
look like real ones. Then each cabinet's state is saved and `Store.refresh_ann_index` runs as
the worker's build job does after a run. Prints what it built; `benchmarks/search.py` measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from rag_indexer_service import demo
from rag_indexer_service.config import load_settings
from rag_indexer_service.db.engine import asyncpg_dsn
from rag_indexer_service.indexing.store import ChunkRow, DocumentWrite, IndexStore
from rag_indexer_service.runtime import open_runtime

BATCH_DOCS = 500


async def copy_cabinet(
    dsn: str,
    store: IndexStore,
    *,
    source: int,
    target: int,
    max_chunks: int | None,
    noise: float,
    seed: int,
) -> int:
    """Write cabinet `source`'s documents into `target` through the store; returns chunks."""
    rng = np.random.default_rng(seed)
    conn = await asyncpg.connect(dsn)
    await register_vector(conn)
    written = 0
    try:
        async with conn.transaction():
            cursor = conn.cursor(
                "SELECT kind, doc_id, chunk_no, content, content_hash, metadata::text, embedding "
                "FROM rag_chunks WHERE cabinet_id = $1 AND generation = 0 "
                "ORDER BY kind, doc_id, chunk_no",
                source,
                prefetch=5000,
            )
            docs: dict[tuple[str, str], tuple[dict[str, Any], list[ChunkRow]]] = {}

            async def flush() -> None:
                writes = [
                    DocumentWrite(
                        kind=kind,
                        doc_id=doc_id,
                        content_hash="".join(c.content_hash for c in chunks)[:64],
                        meta_hash=str(hash(json.dumps(meta, sort_keys=True))),
                        metadata=meta,
                        chunks=chunks,
                    )
                    for (kind, doc_id), (meta, chunks) in docs.items()
                ]
                await store.write_batch(target, writes)
                docs.clear()

            async for r in cursor:
                if max_chunks is not None and written >= max_chunks:
                    break
                key = (r["kind"], r["doc_id"])
                if key not in docs and len(docs) >= BATCH_DOCS:
                    await flush()
                vector = r["embedding"].to_numpy().astype(np.float32)
                if noise:
                    vector = vector + rng.normal(0, noise, vector.shape).astype(np.float32)
                    vector /= np.linalg.norm(vector)
                _, chunks = docs.setdefault(key, (json.loads(r["metadata"]), []))
                chunks.append(ChunkRow(r["chunk_no"], r["content"], r["content_hash"], vector))
                written += 1
            if docs:
                await flush()
    finally:
        await conn.close()
    return written


async def main(args: argparse.Namespace) -> dict[str, object]:
    settings = load_settings(data_dir=Path(args.data_dir))
    report: dict[str, object] = {}
    async with open_runtime(settings) as rt:
        if await rt.store.cabinet_state(1) is None:  # resumable: each step once
            src = await asyncpg.connect(asyncpg_dsn(rt.db.source_url))
            try:
                await demo.create_schema(src)
                t0 = time.perf_counter()
                seeded = await demo.seed(
                    src, cabinets=1, products=args.products, reviews=3, questions=1, seed=7
                )
                report["seed_s"] = round(time.perf_counter() - t0, 1)
                report["seeded_products"] = seeded.products
            finally:
                await src.close()
            t0 = time.perf_counter()
            full = await rt.indexer.index_cabinet(1)
            report["index_big_s"] = round(time.perf_counter() - t0, 1)
            report["big_chunks"] = full.chunks_embedded
        dsn = asyncpg_dsn(rt.db.url)
        embedder_id = rt.indexer.embedder.id
        plan: list[tuple[int, int | None, float]] = [(2, args.small_chunks, 0.0)]
        plan += [(3 + n, None, 0.02) for n in range(args.fillers)]
        for target, limit, noise in plan:
            if await rt.store.cabinet_state(target) is not None:
                continue
            t0 = time.perf_counter()
            n = await copy_cabinet(
                dsn, rt.store, source=1, target=target, max_chunks=limit, noise=noise, seed=target
            )
            await rt.store.save_cabinet_state(
                target, embedder_id=embedder_id, fingerprint=None, success=True
            )
            report[f"cabinet_{target}"] = {"chunks": n, "s": round(time.perf_counter() - t0, 1)}
        for cabinet in [1] + [t for t, _, _ in plan]:
            t0 = time.perf_counter()
            await rt.store.refresh_ann_index(cabinet)
            report[f"ann_index_{cabinet}_s"] = round(time.perf_counter() - t0, 1)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("VACUUM ANALYZE rag_chunks")
            report["table_chunks"] = await conn.fetchval("SELECT count(*) FROM rag_chunks")
            report["table_size"] = await conn.fetchval(
                "SELECT pg_size_pretty(pg_total_relation_size('rag_chunks'))"
            )
        finally:
            await conn.close()
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--products", type=int, default=42_500)
    parser.add_argument("--small-chunks", type=int, default=20_000)
    parser.add_argument("--fillers", type=int, default=3)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2, ensure_ascii=False))
