"""`enqueue_many` against real Redis: stored like `RedisBroker.enqueue` stores a message, and
delivered to a real Dramatiq worker."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from rag_indexer_service.redis_enqueue import enqueue_many


@pytest.fixture
def redis_broker(broker_url: str) -> Iterator[RedisBroker]:
    broker = RedisBroker(url=broker_url)  # type: ignore[no-untyped-call]
    broker.declare_queue("q")
    yield broker
    broker.close()
    broker.client.connection_pool.disconnect()


def test_messages_are_stored_as_redis_broker_enqueue_stores_them(
    redis_broker: RedisBroker, broker_url: str
) -> None:
    reference = redis_broker.enqueue(
        dramatiq.Message(queue_name="q", actor_name="a", args=(7,), kwargs={}, options={})
    )
    [key] = enqueue_many(redis_broker, [("q", "a", (8,))])

    client = redis.Redis.from_url(broker_url)
    stored = {k.decode(): json.loads(v) for k, v in client.hgetall("dramatiq:q.msgs").items()}
    queued = [k.decode() for k in client.lrange("dramatiq:q", 0, -1)]
    client.close()
    ours, theirs = stored[key], stored[reference.options["redis_message_id"]]
    assert queued == [reference.options["redis_message_id"], key]
    assert ours.keys() == theirs.keys()
    assert ours["args"] == [8] and ours["options"] == {"redis_message_id": key}
    assert (ours["queue_name"], ours["actor_name"]) == ("q", "a")


def test_a_worker_receives_every_message(redis_broker: RedisBroker) -> None:
    received: list[int] = []
    all_in = threading.Event()

    @dramatiq.actor(actor_name="collect", queue_name="q", broker=redis_broker)
    def collect(n: int) -> None:
        received.append(n)
        if len(received) == 300:
            all_in.set()

    worker = dramatiq.Worker(redis_broker, worker_timeout=50, worker_threads=2)
    worker.start()
    try:
        keys = enqueue_many(redis_broker, [("q", "collect", (n,)) for n in range(300)])
        assert all_in.wait(30)
    finally:
        worker.stop()

    assert sorted(received) == list(range(300)) and len(set(keys)) == 300
