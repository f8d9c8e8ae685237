"""`Dispatcher` sending through real Redis and the real ledger (redrive is covered with a real
worker process in tests/integration/test_worker_process.py)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

from rag_indexer_service.config import Settings
from rag_indexer_service.errors import BrokerUnavailable
from rag_indexer_service.indexing.report import IndexReport
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


@pytest.fixture
def dead_broker(settings: Settings) -> Iterator[RedisBroker]:
    broker = build_broker(settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))
    assert isinstance(broker, RedisBroker)
    yield broker
    broker.close()


async def test_a_follow_up_or_redrive_the_broker_refuses_stays_queued_for_the_reaper(
    dead_broker: RedisBroker,
    redis_broker: RedisBroker,
    ledger: Ledger,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a run that a second request asked to repeat, finishing while Redis is down
    options = dataclasses.replace(DispatchOptions.from_settings(settings), redrive_queued_after_s=0)
    first, _ = await ledger.request(3, "manual", QUEUE_MANUAL)
    await ledger.start_attempt(first.id, worker_id="w1", stale_after_s=60)
    await ledger.request(3, "manual", QUEUE_MANUAL)
    follow_up = await ledger.succeed(first.id, IndexReport(cabinet_id=3), worker_id="w1")
    assert follow_up is not None
    down = Dispatcher(dead_broker, ledger, options)

    # When its follow-up cannot be sent, nor re-driven
    await down.send_follow_up(follow_up)
    with pytest.raises(BrokerUnavailable):
        await down.redrive_stale()

    # Then the follow-up is still queued, and the reaper sends it once Redis is back
    waiting = await ledger.get(follow_up.id)
    assert waiting is not None and waiting.status == "queued" and waiting.error is None
    caplog.set_level(logging.INFO, logger="rag_indexer_service.jobs.dispatch")
    report = await Dispatcher(redis_broker, ledger, options).redrive_stale()
    assert report.run_ids == [follow_up.id]
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stale runs")]
    assert line.startswith(f"stale runs: 1 re-sent (runs {follow_up.id}) (0 of them from"), line
    sent = await ledger.get(follow_up.id)
    assert sent is not None and sent.message_key is not None
    assert message_present(redis_broker, sent.queue, sent.message_key)
