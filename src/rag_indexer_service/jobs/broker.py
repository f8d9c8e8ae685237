"""`build_broker()` and the names of the queues and actors.

Two queues keep a user's click ahead of a 6-hourly sweep: `rag-manual` (actor
`index_cabinet`, priority 0) and `rag-scheduled` (actor `index_cabinet_scheduled`,
priority 10). Both run the same coroutine. A message carries only the run id.

A third, `rag-indexes` (actor `build_search_indexes`, priority 20), builds a big cabinet's
search indexes after its run, off the run's clock and lock (`indexing/store/ann.py`). Its
message carries the cabinet id; a duplicate waits for the build under way, then finds it done.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    AsyncIO,
    Middleware,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from rag_indexer_service.config import Settings
from rag_indexer_service.errors import ConfigError
from rag_indexer_service.jobs.redis_fast_path import check_fast_path
from rag_indexer_service.runs import Trigger

__all__ = [
    "ACTOR_FOR_QUEUE",
    "ACTOR_INDEXES",
    "ACTOR_MANUAL",
    "ACTOR_SCHEDULED",
    "QUEUES",
    "QUEUE_INDEXES",
    "QUEUE_MANUAL",
    "QUEUE_SCHEDULED",
    "build_broker",
    "queue_for",
]

QUEUE_MANUAL = "rag-manual"
QUEUE_SCHEDULED = "rag-scheduled"
ACTOR_MANUAL = "index_cabinet"
ACTOR_SCHEDULED = "index_cabinet_scheduled"
ACTOR_FOR_QUEUE = {QUEUE_MANUAL: ACTOR_MANUAL, QUEUE_SCHEDULED: ACTOR_SCHEDULED}
QUEUE_INDEXES = "rag-indexes"
ACTOR_INDEXES = "build_search_indexes"
QUEUES = (QUEUE_MANUAL, QUEUE_SCHEDULED, QUEUE_INDEXES)


def queue_for(trigger: Trigger) -> str:
    return QUEUE_SCHEDULED if trigger == "schedule" else QUEUE_MANUAL


def build_broker(settings: Settings, *, allow_stub: bool = False) -> dramatiq.Broker:
    """A RedisBroker for `RAG_BROKER_URL`, or (all-in-one mode, unit tests) a StubBroker.

    Nothing connects here: redis-py connects on first use. Raises `ConfigError` if the
    installed Dramatiq lacks what the Redis fast path relies on.
    """
    middleware: list[Middleware] = [
        AgeLimit(max_age=int(settings.message_max_age_s * 1000)),
        TimeLimit(time_limit=int(settings.run_time_limit_s * 1000)),
        ShutdownNotifications(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=int(settings.retry_min_backoff_s * 1000),
            max_backoff=int(settings.retry_max_backoff_s * 1000),
        ),
        AsyncIO(),
    ]
    broker: dramatiq.Broker
    if settings.broker_url is not None:
        broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=settings.broker_url, middleware=middleware
        )
        check_fast_path(broker)
    elif allow_stub:
        broker = StubBroker(middleware=middleware)
    else:
        raise ConfigError(
            "RAG_BROKER_URL is not set: separate api/worker/scheduler processes need a "
            "shared Redis (e.g. RAG_BROKER_URL=redis://127.0.0.1:6379/0), or use `rag-indexer up`"
        )
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker
