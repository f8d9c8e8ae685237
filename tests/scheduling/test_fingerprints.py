"""The fan-out's bulk fingerprint query gives exactly what the per-cabinet query gives, for the
test source and for the demo source (whose fingerprint reads four tables)."""

from __future__ import annotations

import asyncpg

from rag_indexer_service import demo
from rag_indexer_service.config import default_sources_file
from rag_indexer_service.indexing.sources import SqlSource, load_source_spec
from rag_indexer_service.runtime import Runtime
from tests.scheduling.conftest import add_cabinets


async def test_bulk_fingerprints_match_one_by_one(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinets(source_conn, range(1, 4), docs=2)
    await source_conn.execute("UPDATE src_docs SET version = 5 WHERE cabinet_id = 2")

    bulk = await runtime.source.fingerprints([1, 2, 3, 404])

    one_by_one = {c: await runtime.source.fingerprint(c) for c in (1, 2, 3, 404)}
    d = runtime.source.config_digest
    assert bulk == one_by_one == {1: f"{d}/2:1", 2: f"{d}/2:5", 3: f"{d}/2:1", 404: f"{d}/0:0"}


async def test_bulk_fingerprints_of_the_demo_source(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await demo.create_schema(source_conn)
    await demo.seed(source_conn, cabinets=3, products=4, reviews=1, questions=1, months=1)
    source = SqlSource(runtime.db.source_engine, load_source_spec(default_sources_file()))
    cabinet_ids = [c async for c in source.iter_cabinet_ids()]

    bulk = await source.fingerprints(cabinet_ids)

    assert len(cabinet_ids) == 3 and None not in bulk.values()
    assert bulk == {c: await source.fingerprint(c) for c in cabinet_ids}
