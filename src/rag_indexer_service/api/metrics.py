"""Prometheus metrics of the API process, in a registry of its own (never the global one).

Read from the ledger at scrape time (every replica reports the same numbers: aggregate them
with `max`, not `sum`):
    rag_runs{status,trigger}                       runs in each status (gauge)
    rag_run_duration_seconds{trigger,status}       finished runs (histogram)
    rag_documents_indexed_total{change}            documents by what runs did to them
    rag_chunks_embedded_total, rag_chunks_reused_total
    rag_index_cabinets, rag_index_documents, rag_index_chunks
Read from the broker at scrape time:
    rag_queue_messages{queue,state}                ready | in_flight | delayed | dead
Observed by this process:
    rag_api_request_duration_seconds{method,route,status}
    rag_metrics_source_up{source}                  1 when the last read of database / broker worked
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from rag_indexer_service.api.probes import BrokerProbe, QueueDepth
from rag_indexer_service.indexing.store import IndexStore, IndexTotals
from rag_indexer_service.runs import RUN_STATUSES
from rag_indexer_service.runs.stats import RUN_DURATION_BUCKETS_S, RunStats, run_stats

__all__ = [
    "RUN_DURATION_BUCKETS_S",
    "ApiMetrics",
    "LedgerStats",
    "read_ledger_stats",
]

log = logging.getLogger(__name__)

REQUEST_BUCKETS_S = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class LedgerStats:
    runs: RunStats
    index: IndexTotals


async def read_ledger_stats(engine: AsyncEngine, store: IndexStore) -> LedgerStats:
    """One scan of `rag_runs` (the ledger's) and one of the cabinets (the store's)."""
    return LedgerStats(runs=await run_stats(engine), index=await store.index_totals())


@dataclass(slots=True)
class _Snapshot:
    ledger: LedgerStats | None = None
    queues: list[QueueDepth] = field(default_factory=list)
    database_up: bool = False
    broker_up: bool = False
    taken_at: float = float("-inf")


class _ScrapeCollector(Collector):
    """Yields the last snapshot; `ApiMetrics.refresh()` takes snapshots (async, before render)."""

    def __init__(self, snapshot: Callable[[], _Snapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> list[Metric]:
        return []  # metric names depend on data: skip the registry's describe-time collect

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        up = GaugeMetricFamily(
            "rag_metrics_source_up",
            "1 when the last scrape could read this source.",
            labels=["source"],
        )
        up.add_metric(["database"], 1.0 if snap.database_up else 0.0)
        up.add_metric(["broker"], 1.0 if snap.broker_up else 0.0)
        yield up
        if snap.ledger is not None:
            yield from _ledger_metrics(snap.ledger)
        depth = GaugeMetricFamily(
            "rag_queue_messages", "Messages in the broker's queues.", labels=["queue", "state"]
        )
        for q in snap.queues:
            for state in ("ready", "in_flight", "delayed", "dead"):
                depth.add_metric([q.queue, state], float(getattr(q, state)))
        yield depth


def _ledger_metrics(ledger: LedgerStats) -> Iterator[Metric]:
    stats, index = ledger.runs, ledger.index
    runs = GaugeMetricFamily(
        "rag_runs", "Runs in the ledger by status and trigger.", labels=["status", "trigger"]
    )
    triggers = sorted({t for _, t in stats.runs} | {"manual", "schedule", "cli"})
    for status in RUN_STATUSES:
        for trigger in triggers:
            runs.add_metric([status, trigger], float(stats.runs.get((status, trigger), 0)))
    yield runs
    hist = HistogramMetricFamily(
        "rag_run_duration_seconds",
        "Duration of finished runs (succeeded: indexing time; failed: start to end).",
        labels=["trigger", "status"],
    )
    for (trigger, finished), (buckets, count, total_s) in sorted(stats.durations.items()):
        pairs: list[tuple[str, float]] = [
            (repr(bound), float(n))
            for bound, n in zip(RUN_DURATION_BUCKETS_S, buckets, strict=True)
        ]
        pairs.append(("+Inf", float(count)))
        hist.add_metric([trigger, finished], pairs, total_s)
    yield hist
    docs = CounterMetricFamily(
        "rag_documents_indexed",
        "Documents processed by succeeded runs, by what happened to them.",
        labels=["change"],
    )
    for change, value in stats.documents.items():
        docs.add_metric([change], float(value))
    yield docs
    yield CounterMetricFamily(
        "rag_chunks_embedded", "Chunks embedded by runs.", value=float(stats.chunks_embedded)
    )
    yield CounterMetricFamily(
        "rag_chunks_reused", "Chunks whose vector was reused.", value=float(stats.chunks_reused)
    )
    yield GaugeMetricFamily(
        "rag_index_cabinets",
        "Cabinets with a successful index.",
        value=float(index.cabinets_indexed),
    )
    yield GaugeMetricFamily(
        "rag_index_documents", "Documents in the index.", value=float(index.documents)
    )
    yield GaugeMetricFamily("rag_index_chunks", "Chunks in the index.", value=float(index.chunks))


class ApiMetrics:
    """The registry of one app: request latency plus snapshots read at scrape time."""

    def __init__(self, *, snapshot_ttl_s: float = 1.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_duration = Histogram(
            "rag_api_request_duration_seconds",
            "HTTP requests served by the API, by route template.",
            labelnames=["method", "route", "status"],
            buckets=REQUEST_BUCKETS_S,
            registry=self.registry,
        )
        self._snapshot = _Snapshot()
        self._ttl_s = snapshot_ttl_s
        self._lock = asyncio.Lock()
        self.registry.register(_ScrapeCollector(lambda: self._snapshot))

    def observe_request(self, method: str, route: str, status: int, duration_s: float) -> None:
        self.request_duration.labels(method, route, str(status)).observe(duration_s)

    async def refresh(self, engine: AsyncEngine, store: IndexStore, broker: BrokerProbe) -> None:
        """Read the ledger and the queues, at most once per `snapshot_ttl_s` across scrapes."""
        async with self._lock:
            if time.monotonic() - self._snapshot.taken_at < self._ttl_s:
                return
            snap = _Snapshot(taken_at=time.monotonic())
            try:
                snap.ledger = await asyncio.wait_for(read_ledger_stats(engine, store), 10)
                snap.database_up = True
            except Exception as exc:
                log.warning("metrics: cannot read the ledger: %s", type(exc).__name__)
            try:
                snap.queues = await asyncio.to_thread(broker.queue_depths)
                snap.broker_up = True
            except Exception as exc:
                log.warning("metrics: cannot read the queues: %s", type(exc).__name__)
            self._snapshot = snap

    def render(self) -> bytes:
        return generate_latest(self.registry)
