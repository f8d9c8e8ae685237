"""`Dispatcher` sending through real Redis and the real ledger (redrive is covered with a real
worker process in tests/integration/test_worker_process.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

from rag_indexer_service.config import Settings
from rag_indexer_service.jobs.broker import ACTOR_MANUAL, QUEUE_MANUAL, build_broker
from rag_indexer_service.jobs.dispatch import Dispatcher, DispatchOptions
from rag_indexer_service.jobs.redis_fast_path import message_present
from rag_indexer_service.runs import Ledger


class CountEnqueues(dramatiq.Middleware):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def after_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int
    ) -> None:
        self.seen.append(message.actor_name)


@pytest.fixture
def redis_broker(settings: Settings, broker_url: str) -> Iterator[RedisBroker]:
    broker = build_broker(settings.model_copy(update={"broker_url": broker_url}))
    assert isinstance(broker, RedisBroker)
    yield broker
    broker.close()
    broker.client.connection_pool.disconnect()


@pytest.mark.parametrize("hooked", [False, True], ids=["fast-path", "enqueue-middleware"])
async def test_sent_runs_record_the_key_their_message_is_stored_under(
    redis_broker: RedisBroker, ledger: Ledger, settings: Settings, hooked: bool
) -> None:
    # Given a Redis broker, with or without a middleware that must see every enqueue
    hook = CountEnqueues()
    if hooked:
        redis_broker.add_middleware(hook)
    dispatcher = Dispatcher(redis_broker, ledger, DispatchOptions.from_settings(settings))

    # When two cabinets are triggered
    first = await dispatcher.trigger(1, "manual")
    second = await dispatcher.trigger(2, "manual")

    # Then each run names a message Redis holds, and the middleware saw both sends
    for result in (first, second):
        run = await ledger.get(result.run.id)
        assert run is not None and run.message_key is not None and run.queue == QUEUE_MANUAL
        assert message_present(redis_broker, run.queue, run.message_key)
    assert hook.seen == ([ACTOR_MANUAL, ACTOR_MANUAL] if hooked else [])
