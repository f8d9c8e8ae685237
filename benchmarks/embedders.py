"""Embedder benchmark: load time, texts/s and memory of each offline embedder on demo chunks.

    .venv/bin/python benchmarks/embedders.py [--products 2000] [--embedders hashing,navec]

Seeds one demo cabinet, renders and chunks its documents as the indexer does, then embeds
them in batches of `RAG_EMBED_BATCH_SIZE` on one thread: the best of three passes (the first
pass also fills the embedders' per-token caches, as a long index run does). Each embedder
runs in its own process so its RSS growth is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from rag_indexer_service import demo
from rag_indexer_service.config import load_settings
from rag_indexer_service.db.engine import asyncpg_dsn
from rag_indexer_service.indexing.chunking import split_text
from rag_indexer_service.indexing.embedders import build_embedder
from rag_indexer_service.runtime import open_runtime


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def demo_chunks(products: int) -> list[str]:
    data_dir = Path(tempfile.mkdtemp(prefix="rag-embed-bench-"))
    settings = load_settings(data_dir=data_dir, embedder="hashing")
    try:
        async with open_runtime(settings) as rt:
            conn = await asyncpg.connect(asyncpg_dsn(rt.db.source_url))
            try:
                await demo.seed(conn, cabinets=1, products=products, seed=7)
            finally:
                await conn.close()
            chunks: list[str] = []
            async for doc in rt.source.iter_documents(1):
                chunks += split_text(
                    doc.text, size=settings.chunk_size_chars, overlap=settings.chunk_overlap_chars
                )
            return chunks
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def measure(name: str, texts: list[str], batch: int) -> dict[str, Any]:
    before = rss_mib()
    embedder = build_embedder(load_settings(embedder=name))
    started = time.perf_counter()
    asyncio.run(embedder.embed(texts[:1]))
    load_s = time.perf_counter() - started
    passes = []
    for _ in range(3):
        started = time.perf_counter()
        for i in range(0, len(texts), batch):
            asyncio.run(embedder.embed(texts[i : i + batch]))
        passes.append(time.perf_counter() - started)
    return {
        "id": embedder.id,
        "load_s": round(load_s, 2),
        "texts_per_s": round(len(texts) / min(passes)),
        "first_pass_texts_per_s": round(len(texts) / passes[0]),
        "rss_growth_mib": round(rss_mib() - before),
    }


def main(args: argparse.Namespace) -> dict[str, Any]:
    texts = asyncio.run(demo_chunks(args.products))
    batch = load_settings().embed_batch_size
    result: dict[str, Any] = {"chunks": len(texts), "batch": batch}
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        for name in args.embedders.split(","):
            result[name] = pool.apply(measure, (name, texts, batch))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--embedders", default="hashing,navec")
    print(json.dumps(main(parser.parse_args()), indent=2))
