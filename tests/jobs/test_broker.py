"""`build_broker`: which broker each mode gets, and the refusals at process start (unit tests:
nothing connects while a broker is built)."""

from __future__ import annotations

import pytest
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from rag_indexer_service.config import load_settings
from rag_indexer_service.errors import ConfigError
from rag_indexer_service.jobs.broker import QUEUE_MANUAL, QUEUE_SCHEDULED, build_broker

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def test_broker_required_outside_all_in_one_mode() -> None:
    with pytest.raises(ConfigError, match="RAG_BROKER_URL is not set"):
        build_broker(load_settings(broker_url=None))


def test_all_in_one_mode_gets_a_stub_broker_with_both_queues() -> None:
    broker = build_broker(load_settings(broker_url=None), allow_stub=True)

    assert isinstance(broker, StubBroker)
    assert {QUEUE_MANUAL, QUEUE_SCHEDULED} <= broker.get_declared_queues()


def test_the_installed_dramatiq_has_what_the_fast_path_needs() -> None:
    broker = build_broker(load_settings(broker_url=UNREACHABLE_REDIS))

    assert isinstance(broker, RedisBroker)
    assert {QUEUE_MANUAL, QUEUE_SCHEDULED} <= broker.get_declared_queues()


def test_a_dramatiq_without_the_fast_path_surface_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a Dramatiq release that dropped the private method the fast path calls
    monkeypatch.delattr(RedisBroker, "_max_unpack_size")
    redis_settings = load_settings(broker_url=UNREACHABLE_REDIS)

    # When a process builds its broker, Then it stops with an error naming what is missing
    with pytest.raises(ConfigError, match=r"missing: RedisBroker\._max_unpack_size\(\)"):
        build_broker(redis_settings)
