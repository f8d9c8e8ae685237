"""Fixtures for the scheduler: a Scheduler over the test database whose broker only collects
messages (a StubBroker with no worker), so a test can count exactly what a fan-out sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import asyncpg
import dramatiq
import pytest

from rag_indexer_service.config import Settings
from rag_indexer_service.indexing.store import IndexStore
from rag_indexer_service.jobs.broker import QUEUE_SCHEDULED, build_broker
from rag_indexer_service.jobs.dispatch import Dispatcher, DispatchOptions
from rag_indexer_service.runs import Ledger, Run
from rag_indexer_service.runtime import Runtime
from rag_indexer_service.scheduling import FanOut, FanOutOptions, Scheduler, SchedulerOptions
from tests.helpers import add_cabinet

MakeScheduler = Callable[..., Scheduler]


@pytest.fixture
def collecting_broker(settings: Settings) -> Iterator[dramatiq.Broker]:
    """A StubBroker nobody consumes: sent messages stay in its queues."""
    broker = build_broker(settings, allow_stub=True)
    yield broker
    broker.close()


def sent_messages(broker: dramatiq.Broker) -> int:
    queue = broker.queues[QUEUE_SCHEDULED]
    return int(queue.qsize())


@pytest.fixture
def make_scheduler(runtime: Runtime, collecting_broker: dramatiq.Broker) -> MakeScheduler:
    """`make_scheduler(settings=…, broker=…, scheduler_id=…, batch_size=…)` over the test DB."""

    def make(
        *,
        settings: Settings | None = None,
        broker: dramatiq.Broker | None = None,
        scheduler_id: str = "scheduler-a",
        batch_size: int = 1000,
        store: IndexStore | None = None,
    ) -> Scheduler:
        chosen = settings or runtime.settings
        ledger = Ledger(runtime.db.engine)
        dispatcher = Dispatcher(
            broker or collecting_broker, ledger, DispatchOptions.from_settings(chosen)
        )
        fan_out = FanOut(
            source=runtime.source,
            store=store or runtime.store,
            ledger=ledger,
            dispatcher=dispatcher,
            embedder_id=runtime.indexer.embedder.id,
            options=FanOutOptions.from_settings(chosen, batch_size=batch_size),
        )
        return Scheduler(
            options=SchedulerOptions.from_settings(chosen),
            engine=runtime.db.engine,
            fan_out=fan_out,
            dispatcher=dispatcher,
            scheduler_id=scheduler_id,
        )

    return make


async def add_cabinets(conn: asyncpg.Connection, cabinet_ids: range, docs: int = 3) -> None:
    for cabinet_id in cabinet_ids:
        await add_cabinet(conn, cabinet_id, docs=docs)


async def scheduled_runs(runtime: Runtime) -> list[Run]:
    """Runs the scheduler queued, oldest first."""
    runs = await Ledger(runtime.db.engine).list_runs(limit=1000)
    return sorted((r for r in runs if r.trigger == "schedule"), key=lambda r: r.id)


async def index_counts(runtime: Runtime) -> dict[int, tuple[int, int]]:
    """`cabinet_id -> (documents, chunks)` of every cabinet the store has a record of."""
    counts = {}
    for cabinet_id in sorted(await runtime.store.indexed_cabinet_ids()):
        rows = await runtime.store.row_counts(cabinet_id)
        counts[cabinet_id] = (rows.documents, rows.chunks)
    return counts
