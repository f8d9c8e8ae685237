"""A second source behind `CabinetSource`: documents held by Python (what an HTTP API or a
callable source would be), with neither bulk fingerprints nor delta reads. The indexer and the
fan-out work with it unchanged, through the protocol alone, into the real store."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncGenerator, Iterator

import dramatiq
import pytest

from rag_indexer_service.config import Settings
from rag_indexer_service.indexing.embedders import HashingEmbedder
from rag_indexer_service.indexing.indexer import IndexOptions, RAGIndexer
from rag_indexer_service.indexing.sources import (
    BulkFingerprints,
    CabinetSource,
    DeltaReads,
    SourceDocument,
)
from rag_indexer_service.jobs.broker import QUEUE_SCHEDULED, build_broker
from rag_indexer_service.jobs.dispatch import Dispatcher, DispatchOptions
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime
from rag_indexer_service.scheduling import FanOut, FanOutOptions, FanOutReport


class MemorySource:
    """Cabinets and their documents in a dict; the fingerprint is a digest of them."""

    def __init__(self, cabinets: dict[int, dict[str, str]]) -> None:
        self.cabinets = cabinets

    @property
    def has_fingerprints(self) -> bool:
        return True

    async def iter_cabinet_ids(self) -> AsyncGenerator[int, None]:
        for cabinet_id in sorted(self.cabinets):
            yield cabinet_id

    async def cabinet_exists(self, cabinet_id: int) -> bool:
        return cabinet_id in self.cabinets

    async def fingerprint(self, cabinet_id: int) -> str | None:
        docs = json.dumps(self.cabinets.get(cabinet_id), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(docs.encode()).hexdigest()

    async def iter_documents(self, cabinet_id: int) -> AsyncGenerator[SourceDocument, None]:
        for doc_id, text in sorted(self.cabinets[cabinet_id].items()):
            yield SourceDocument("note", doc_id, text, {"length": len(text)})

    async def check(self) -> None:
        return None


@pytest.fixture
def source() -> MemorySource:
    return MemorySource(
        {
            1: {"a": "кроссовки для бега, лёгкие и мягкие", "b": "чайник из стекла на 1.7 л"},
            2: {"c": "рюкзак для города с отделением для ноутбука"},
        }
    )


@pytest.fixture
def indexer(runtime: Runtime, source: MemorySource) -> RAGIndexer:
    return RAGIndexer(
        source=source,
        store=runtime.store,
        embedder=HashingEmbedder(64),
        options=IndexOptions(chunk_size_chars=200, chunk_overlap_chars=20),
    )


@pytest.fixture
def stub_broker(settings: Settings) -> Iterator[dramatiq.Broker]:
    broker = build_broker(settings, allow_stub=True)
    yield broker
    broker.close()


def test_the_memory_source_is_a_plain_cabinet_source() -> None:
    source: CabinetSource = MemorySource({})
    assert not isinstance(source, BulkFingerprints) and not isinstance(source, DeltaReads)


async def test_the_indexer_indexes_skips_updates_and_deletes_through_the_protocol(
    runtime: Runtime, source: MemorySource, indexer: RAGIndexer
) -> None:
    first = await indexer.index_cabinet(1)
    assert (first.docs_added, first.mode) == (2, "full")
    assert (await runtime.store.row_counts(1)).documents == 2

    again = await indexer.index_cabinet(1)
    assert again.scan_skipped and again.docs_unchanged == 2

    source.cabinets[1]["a"] = "кроссовки для трейла с защитой носка"
    del source.cabinets[1]["b"]
    changed = await indexer.index_cabinet(1)
    assert (changed.docs_updated, changed.docs_deleted, changed.docs_unchanged) == (1, 1, 0)
    assert (await runtime.store.row_counts(1)).documents == 1

    [hit] = await indexer.search(1, "трейл", k=5)
    assert hit.doc_id == "a" and "трейла" in hit.content


async def test_the_fan_out_fingerprints_cabinet_by_cabinet_and_skips_the_unchanged(
    runtime: Runtime,
    source: MemorySource,
    indexer: RAGIndexer,
    settings: Settings,
    stub_broker: dramatiq.Broker,
) -> None:
    await indexer.index_cabinet(1)
    ledger = Ledger(runtime.db.engine)
    fan_out = FanOut(
        source=source,
        store=runtime.store,
        ledger=ledger,
        dispatcher=Dispatcher(stub_broker, ledger, DispatchOptions.from_settings(settings)),
        embedder_id=indexer.embedder.id,
        options=FanOutOptions.from_settings(settings),
    )
    report = FanOutReport()
    await fan_out.run(report)

    assert (report.seen, report.skipped, report.enqueued, report.errors) == (2, 1, 1, 0)
    assert stub_broker.queues[QUEUE_SCHEDULED].qsize() == 1
    [run] = await ledger.list_runs(limit=10)
    assert run.cabinet_id == 2 and run.trigger == "schedule"
