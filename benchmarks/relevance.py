"""Relevance benchmark: nDCG@10 and recall@10 of labeled queries over the demo cabinets.

    .venv/bin/python benchmarks/relevance.py [--cabinets 20] [--embedders hashing,navec]
        [--per-query] [--blind-per-query]

Seeds the demo source (`--cabinets` × `--products`, seed 42: cabinets 1–5 are the ones
`rag-indexer up --demo` shows), indexes every cabinet with each embedder in turn and asks
every query of `relevance_queries.toml` (the tuning set), `relevance_heldout.toml`,
`relevance_fresh.toml`, `relevance_blind.toml` and `relevance_late.toml` (held-out sets,
reported as their own "held-out …", "fresh …", "blind …" and "late …" sets; the blind
set's per-query figures only with `--blind-per-query`) in every cabinet that holds at least
one fully relevant document. Relevance comes from the seeded rows (see the TOML's header),
never from search results. Three rankings per query, all from the service's one search statement:

* hybrid: `RAGIndexer.search`, the fused ranking callers get;
* keyword: its full-text side alone (hits ordered by `text_rank`),
* vector: its vector side alone (hits ordered by `vector_rank`),

the last two read from one `Store.search` call with a candidate pool large enough that the
fused list holds both sides whole. Chunks are folded into documents (a document ranks where
its best chunk does). Measures are computed with ir-measures (trec_eval): nDCG@10 with the
graded labels, recall@10 of the grade-2 documents (`R(rel=2)@10`), per query set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import tempfile
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import ir_measures
from ir_measures import R, nDCG
from sqlalchemy import text

from rag_indexer_service import demo
from rag_indexer_service.config import load_settings
from rag_indexer_service.db.engine import asyncpg_dsn
from rag_indexer_service.indexing.store import SearchHit
from rag_indexer_service.indexing.store.keyword_query import build_keyword_query
from rag_indexer_service.runtime import Runtime, open_runtime

QUERIES_FILE = Path(__file__).with_name("relevance_queries.toml")
HELDOUT_FILE = Path(__file__).with_name("relevance_heldout.toml")
FRESH_FILE = Path(__file__).with_name("relevance_fresh.toml")
BLIND_FILE = Path(__file__).with_name("relevance_blind.toml")
LATE_FILE = Path(__file__).with_name("relevance_late.toml")
DEPTH = 10
POOL = 100  # candidates per side: the fused list of 2 × POOL holds both sides whole
MEASURES = {"nDCG@10": nDCG @ DEPTH, "recall@10": R(rel=2) @ DEPTH}
MODES = ("keyword", "vector", "hybrid")

Qrels = dict[str, dict[str, int]]  # query id -> doc key -> grade
Run = dict[str, dict[str, float]]


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    set: str
    products: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    topic: str | None = None
    kinds: tuple[str, ...] = ()

    @classmethod
    def from_toml(cls, raw: dict[str, Any], prefix: str = "") -> Query:
        return cls(
            text=raw["text"],
            set=prefix + raw["set"],
            products=tuple(raw.get("products", ())),
            brands=tuple(raw.get("brands", ())),
            topic=raw.get("topic"),
            kinds=tuple(raw.get("kinds", ())),
        )

    def names(self) -> list[str]:
        return [*self.products, *self.brands]


@dataclass(slots=True)
class Corpus:
    """The seeded rows the labels are derived from, per cabinet."""

    # cabinet -> product id -> (title head, brand)
    products: dict[int, dict[int, tuple[str, str | None]]] = field(default_factory=dict)
    # cabinet -> doc key -> product id, for every document about one product
    about: dict[int, dict[str, int]] = field(default_factory=dict)
    # cabinet -> (doc key, kind, customer text) for reviews and questions
    texts: dict[int, list[tuple[str, str, str]]] = field(default_factory=dict)


def title_head(title: str, brand: str | None) -> str:
    """The product type: the title up to its brand, or up to the first comma without one."""
    if brand and f" {brand}" in title:
        return title.split(f" {brand}", 1)[0]
    return title.split(",", 1)[0]


async def load_corpus(conn: asyncpg.Connection) -> Corpus:
    corpus = Corpus()
    for r in await conn.fetch("SELECT id, cabinet_id, title, brand FROM products"):
        corpus.products.setdefault(r["cabinet_id"], {})[r["id"]] = (
            title_head(r["title"], r["brand"]),
            r["brand"],
        )
        corpus.about.setdefault(r["cabinet_id"], {})[f"product:{r['id']}"] = r["id"]
    for kind, table in (("review", "reviews"), ("question", "questions")):
        for r in await conn.fetch(f"SELECT id, cabinet_id, product_id, text FROM {table}"):
            key = f"{kind}:{r['id']}"
            corpus.about.setdefault(r["cabinet_id"], {})[key] = r["product_id"]
            corpus.texts.setdefault(r["cabinet_id"], []).append((key, kind, r["text"].lower()))
    months = await conn.fetch(
        "SELECT DISTINCT cabinet_id, product_id, to_char(day, 'YYYY-MM') AS month FROM sales_daily"
    )
    for r in months:
        key = f"sales_month:{r['product_id']}:{r['month']}"
        corpus.about.setdefault(r["cabinet_id"], {})[key] = r["product_id"]
    return corpus


def judge(query: Query, corpus: Corpus, cabinet: int) -> dict[str, int]:
    """Graded relevance of the cabinet's documents for `query` (absent: grade 0)."""
    grades: dict[str, int] = {}
    if query.products or query.brands:
        wanted = {
            pid
            for pid, (head, brand) in corpus.products.get(cabinet, {}).items()
            if head in query.products or brand in query.brands
        }
        for key, pid in corpus.about.get(cabinet, {}).items():
            if pid in wanted:
                grades[key] = 2 if key.startswith("product:") else 1
    if query.topic is not None:
        pattern = re.compile(query.topic)
        for key, kind, text in corpus.texts.get(cabinet, []):
            if kind in query.kinds and pattern.search(text):
                grades[key] = 2
    return grades


async def check_labels(conn: asyncpg.Connection, queries: Sequence[Query], corpus: Corpus) -> None:
    """Every name must exist in the data; a "no-stem" query must share no Snowball stem with
    the names or the topic it is judged by."""
    heads = {h for products in corpus.products.values() for h, _ in products.values()}
    brands = {b for products in corpus.products.values() for _, b in products.values()}
    for q in queries:
        missing = [p for p in q.products if p not in heads]
        missing += [b for b in q.brands if b not in brands]
        if missing:
            raise SystemExit(f"query {q.text!r}: not in the demo data: {missing}")
        if not q.set.endswith("no-stem"):
            continue
        stems = await lexemes(conn, q.text)
        shared = stems & await lexemes(conn, " ".join(q.names()))
        if q.topic is not None:
            shared |= {s for s in stems if re.search(q.topic, s)}
        if shared:
            raise SystemExit(f"query {q.text!r} is labeled no-stem but shares {sorted(shared)}")


async def lexemes(conn: asyncpg.Connection, text: str) -> set[str]:
    rows = await conn.fetch("SELECT lexeme FROM unnest(to_tsvector('russian', $1))", text)
    return {r["lexeme"] for r in rows}


def doc_run(hits: Iterable[SearchHit]) -> dict[str, float]:
    """Documents in the order of their best chunk, scored so that trec_eval keeps that order."""
    ranked: list[str] = []
    for hit in hits:
        key = f"{hit.kind}:{hit.doc_id}"
        if key not in ranked:
            ranked.append(key)
    return {key: float(len(ranked) - i) for i, key in enumerate(ranked[:DEPTH])}


async def rankings(rt: Runtime, cabinet: int, text: str) -> dict[str, dict[str, float]]:
    embedder = rt.indexer.embedder
    hybrid = await rt.indexer.search(cabinet, text, k=4 * DEPTH)
    keywords = build_keyword_query(text, rt.indexer.synonyms)
    vector = await rt.indexer.query_vector(text, keywords)
    both = await rt.store.search(
        cabinet,
        query_text=text,
        query_vector=vector,
        k=2 * POOL,
        candidates=POOL,
        embedder_id=embedder.id,
        keyword_query=keywords,
    )
    keyword = sorted((h for h in both if h.text_rank is not None), key=lambda h: h.text_rank or 0)
    by_vector = sorted(
        (h for h in both if h.vector_rank is not None), key=lambda h: h.vector_rank or 0
    )
    return {"keyword": doc_run(keyword), "vector": doc_run(by_vector), "hybrid": doc_run(hybrid)}


def aggregate(qrels: Qrels, run: Run) -> dict[str, float]:
    values = ir_measures.calc_aggregate(list(MEASURES.values()), qrels, run)
    return {name: round(float(values[m]), 3) for name, m in MEASURES.items()}


def per_query(qrels: Qrels, run: Run) -> dict[str, float]:
    return {
        m.query_id: round(float(m.value), 3)
        for m in ir_measures.iter_calc([MEASURES["nDCG@10"]], qrels, run)
    }


async def evaluate(
    settings_kw: dict[str, Any], embedder: str, queries: Sequence[Query], corpus: Corpus
) -> dict[str, Any]:
    settings = load_settings(**settings_kw, embedder=embedder)
    qrels: dict[str, Qrels] = defaultdict(dict)  # set -> qrels
    runs: dict[tuple[str, str], Run] = defaultdict(dict)  # (set, mode) -> run
    async with open_runtime(settings) as rt:
        for cabinet in sorted(corpus.products):
            await rt.indexer.index_cabinet(cabinet)
        # The statistics autovacuum gathers a minute or so after the rows came (the search
        # reads how common each word is from them): gathered now, so every run sees the same.
        async with rt.db.engine.begin() as conn:
            await conn.execute(text("ANALYZE rag_chunks"))
        for n, q in enumerate(queries):
            for cabinet in sorted(corpus.products):
                grades = judge(q, corpus, cabinet)
                if 2 not in grades.values():
                    continue
                qid = f"{n}:{q.text}@{cabinet}"
                qrels[q.set][qid] = grades
                for mode, ranked in (await rankings(rt, cabinet, q.text)).items():
                    runs[q.set, mode][qid] = ranked
    table: dict[str, Any] = {}
    for query_set, set_qrels in sorted(qrels.items()):
        table[query_set] = {"queries": len(set_qrels)}
        for mode in MODES:
            run = runs[query_set, mode]
            table[query_set][mode] = aggregate(set_qrels, run)
            table[query_set][mode]["per_query_ndcg"] = per_query(set_qrels, run)
    return table


def by_text(per_qid: dict[str, float]) -> dict[str, float]:
    """Per-query nDCG averaged over the cabinets the query was asked in."""
    values: dict[str, list[float]] = defaultdict(list)
    for qid, value in per_qid.items():
        values[qid.split(":", 1)[1].rsplit("@", 1)[0]].append(value)
    return {text: round(sum(v) / len(v), 3) for text, v in values.items()}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    queries = [Query.from_toml(q) for q in tomllib.loads(QUERIES_FILE.read_text())["query"]]
    held_out = (
        ("held-out ", HELDOUT_FILE),
        ("fresh ", FRESH_FILE),
        ("blind ", BLIND_FILE),
        ("late ", LATE_FILE),
    )
    for prefix, path in held_out:
        queries += [Query.from_toml(q, prefix) for q in tomllib.loads(path.read_text())["query"]]
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="rag-relevance-"))
    settings_kw: dict[str, Any] = {"data_dir": data_dir}
    result: dict[str, Any] = {"cabinets": args.cabinets, "products": args.products}
    try:
        async with open_runtime(load_settings(**settings_kw)) as rt:
            conn = await asyncpg.connect(asyncpg_dsn(rt.db.source_url))
            try:
                await demo.seed(conn, cabinets=args.cabinets, products=args.products, seed=42)
                corpus = await load_corpus(conn)
                await check_labels(conn, queries, corpus)
            finally:
                await conn.close()
        for embedder in args.embedders.split(","):
            table = await evaluate(settings_kw, embedder, queries, corpus)
            for query_set, sets in table.items():
                shown = args.blind_per_query if query_set.startswith("blind ") else args.per_query
                for mode in MODES:
                    per_qid = sets[mode].pop("per_query_ndcg")
                    if shown:
                        sets[mode]["per_query_ndcg"] = by_text(per_qid)
            result[embedder] = table
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cabinets", type=int, default=20)
    parser.add_argument("--products", type=int, default=50)
    parser.add_argument("--embedders", default="hashing,navec")
    parser.add_argument("--per-query", action="store_true", help="nDCG@10 of each query too")
    parser.add_argument(
        "--blind-per-query", action="store_true", help="nDCG@10 of each blind query too"
    )
    parser.add_argument("--data-dir", default=None, help="keep the embedded database here")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2, ensure_ascii=False))
