"""Reachability probes of the database and the broker, with short timeouts.

The broker probe has its own small Redis client (2 s socket timeouts) so that a hung Redis
can make `/readyz` and `/metrics` answer "down", never hang them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rag_indexer_service.jobs.broker import QUEUES
from rag_indexer_service.jobs.redis_fast_path import queue_counts

__all__ = ["PROBE_TIMEOUT_S", "BrokerProbe", "QueueDepth", "ping_database"]

PROBE_TIMEOUT_S = 2.0


async def ping_database(engine: AsyncEngine, *, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Run `SELECT 1`; raises on failure or after `timeout_s`."""

    async def ping() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    await asyncio.wait_for(ping(), timeout_s)


@dataclass(frozen=True, slots=True)
class QueueDepth:
    queue: str
    ready: int
    in_flight: int
    delayed: int
    dead: int


class BrokerProbe:
    """Blocking checks of the broker; call them in a thread."""

    def __init__(self, broker: dramatiq.Broker, *, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.broker = broker
        self._client: redis.Redis | None = None
        if isinstance(broker, RedisBroker):
            pool = broker.client.connection_pool
            kwargs = {
                **pool.connection_kwargs,
                "socket_timeout": timeout_s,
                "socket_connect_timeout": timeout_s,
            }
            self._client = redis.Redis(
                connection_pool=redis.ConnectionPool(
                    connection_class=pool.connection_class, max_connections=4, **kwargs
                )
            )

    def ping(self) -> None:
        if self._client is not None:
            self._client.ping()

    def queue_depths(self, queues: Sequence[str] = QUEUES) -> list[QueueDepth]:
        broker = self.broker
        if isinstance(broker, RedisBroker) and self._client is not None:
            counts = queue_counts(self._client, broker.namespace, queues)
            depths = []
            for queue, (ready, held, delayed, dead) in zip(queues, counts, strict=True):
                depths.append(QueueDepth(queue, ready, max(held - ready, 0), delayed, dead))
            return depths
        if isinstance(broker, StubBroker):
            return [
                QueueDepth(
                    queue,
                    ready=_stub_size(broker, queue),
                    in_flight=0,
                    delayed=_stub_size(broker, dq_name(queue)),
                    dead=len(broker.dead_letters_by_queue.get(queue, ())),
                )
                for queue in queues
            ]
        return []

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _stub_size(broker: StubBroker, queue: str) -> int:
    found = broker.queues.get(queue)
    return 0 if found is None else int(found.qsize())
