"""The Redis fast path. `enqueue_many` against real Redis: stored like `RedisBroker.enqueue`
stores a message, and delivered to a real Dramatiq worker. `check_fast_path` refuses a Dramatiq
whose private surface changed (simulated on a broker that never connects), and a middleware
that hooks enqueue turns the fast path off."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from rag_indexer_service.errors import ConfigError
from rag_indexer_service.jobs.redis_fast_path import check_fast_path, enqueue_many, uses_fast_path


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


@pytest.fixture
def offline_broker() -> Iterator[RedisBroker]:
    """A RedisBroker that never connects: building one and reading its scripts is local."""
    broker = RedisBroker(url="redis://127.0.0.1:1/0")  # type: ignore[no-untyped-call]
    yield broker
    broker.close()


def _rewrite_dispatch(broker: RedisBroker, old: str, new: str) -> None:
    script = broker.scripts["dispatch"].script
    text = script.decode() if isinstance(script, bytes) else script
    assert old in text
    broker.scripts["dispatch"] = broker.client.register_script(text.replace(old, new))


def test_the_installed_dramatiq_passes(offline_broker: RedisBroker) -> None:
    check_fast_path(offline_broker)


def test_a_missing_private_method_is_named(
    offline_broker: RedisBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(RedisBroker, "_max_unpack_size")

    with pytest.raises(ConfigError, match=r"changed .*RedisBroker\._max_unpack_size\(\)"):
        check_fast_path(offline_broker)


def test_a_missing_broker_attribute_is_named(offline_broker: RedisBroker) -> None:
    del offline_broker.dead_message_ttl

    with pytest.raises(ConfigError, match=r"missing: RedisBroker\.dead_message_ttl"):
        check_fast_path(offline_broker)


def test_a_missing_dispatch_script_is_named(offline_broker: RedisBroker) -> None:
    del offline_broker.scripts["dispatch"]

    with pytest.raises(ConfigError, match=r'missing: RedisBroker\.scripts\["dispatch"\]'):
        check_fast_path(offline_broker)


@pytest.mark.parametrize(
    "old, new, named",
    [
        # one more fixed argument before the command's own: every position we send shifts
        ("local max_unpack_size = ARGV[8]", "local max_unpack_size = ARGV[9]", "ARGV[8]"),
        ("ARGS[i - 8] = ARGV[i]", "ARGS[i - 9] = ARGV[i]", "ARGS[i - 8]"),
        # messages stored under another key: `message_present` would look in the wrong hash
        ('queue_full_name .. ".msgs"', 'queue_full_name .. ".messages"', '".msgs"'),
        # enqueue takes its arguments in another order
        ("local message_id = ARGS[1]", "local message_id = ARGS[2]", "ARGS[1]"),
    ],
)
def test_a_changed_dispatch_script_is_refused(
    offline_broker: RedisBroker, old: str, new: str, named: str
) -> None:
    _rewrite_dispatch(offline_broker, old, new)

    with pytest.raises(ConfigError, match=r"dispatch\.lua") as refused:
        check_fast_path(offline_broker)
    assert named in str(refused.value)


class _CountEnqueues(dramatiq.Middleware):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def before_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int
    ) -> None:
        self.seen.append(message.actor_name)


def test_a_middleware_that_hooks_enqueue_turns_the_fast_path_off(
    offline_broker: RedisBroker,
) -> None:
    assert uses_fast_path(offline_broker)

    offline_broker.add_middleware(_CountEnqueues())

    assert not uses_fast_path(offline_broker)
