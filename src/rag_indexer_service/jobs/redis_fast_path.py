"""The one module that knows how Dramatiq's `RedisBroker` stores messages.

`enqueue_many()`: many messages into Redis in one round trip. Dramatiq has no batch enqueue:
`RedisBroker.enqueue` runs the broker's `dispatch` Lua script once per message; this sends the
same script call for every message in a single write, with the RESP commands packed here:
redis-py's pipeline spends ~75 µs of CPU per message packing arguments and parsing replies,
this ~20 µs, which is what lets the scheduler's fan-out reach 10k+ cabinets/s. The stored
messages are exactly what `RedisBroker.enqueue` would store. It skips the broker's `enqueue`
middleware hooks, so `uses_fast_path()` says no when a middleware has one.

`message_present()`: does Redis still hold a message (queued or delayed)?
`queue_counts()`: ready, held, delayed and dead messages of queues, in one round trip.

Both rely on Dramatiq internals: the `dispatch` script's argument layout, its key names and
`RedisBroker._max_unpack_size()`. They were verified against Dramatiq 2.0.0 to 2.2.1, whose
`brokers/redis.py` and `dispatch.lua` are identical; pyproject pins that range, and
`check_fast_path()` (called by `build_broker`) refuses to start if the surface changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeGuard

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name, xq_name
from dramatiq.middleware import Middleware

from rag_indexer_service.errors import ConfigError

__all__ = [
    "check_fast_path",
    "enqueue_many",
    "message_present",
    "queue_counts",
    "uses_fast_path",
]

VERIFIED_DRAMATIQ = "2.0.0 to 2.2.1"

# What this module assumes of `dispatch.lua`, whitespace-normalised: the argument layout
# `enqueue_many` sends, the `enqueue` command, and the key names `message_present` reads.
_DISPATCH_ASSUMES = (
    "local namespace = KEYS[1]",
    "local command = ARGV[1]",
    "local timestamp = ARGV[2]",
    "local queue_name = ARGV[3]",
    "local worker_id = ARGV[4]",
    "local heartbeat_timeout = ARGV[5]",
    "local dead_message_ttl = ARGV[6]",
    "local do_maintenance = ARGV[7]",
    "local max_unpack_size = ARGV[8]",
    "for i=9,#ARGV do ARGS[i - 8] = ARGV[i] end",
    'local queue_full_name = namespace .. ":" .. queue_name',
    'local queue_messages = queue_full_name .. ".msgs"',
    'if command == "enqueue" then local message_id = ARGS[1] local message_data = ARGS[2] '
    'redis.call("hset", queue_messages, message_id, message_data) '
    'redis.call("rpush", queue_full_name, message_id)',
)
_BROKER_ATTRIBUTES = ("client", "namespace", "broker_id", "heartbeat_timeout", "dead_message_ttl")


def _surface_gaps(broker: RedisBroker) -> list[str]:
    gaps = [f"RedisBroker.{name}" for name in _BROKER_ATTRIBUTES if not hasattr(broker, name)]
    if not callable(getattr(broker, "_max_unpack_size", None)):
        gaps.append("RedisBroker._max_unpack_size()")
    scripts = getattr(broker, "scripts", None)
    script = getattr(scripts.get("dispatch"), "script", None) if isinstance(scripts, dict) else None
    if isinstance(script, bytes):
        script = script.decode()
    if not isinstance(script, str):
        return [*gaps, 'RedisBroker.scripts["dispatch"].script']
    text = " ".join(script.split())
    gaps.extend(f"dispatch.lua: {line}" for line in _DISPATCH_ASSUMES if line not in text)
    return gaps


def check_fast_path(broker: RedisBroker) -> None:
    """Raise `ConfigError` unless this Dramatiq still has what this module relies on."""
    gaps = _surface_gaps(broker)
    if gaps:
        raise ConfigError(
            f"dramatiq {dramatiq.__version__} changed the Redis broker internals that "
            f"rag_indexer_service.jobs.redis_fast_path relies on (verified against "
            f"{VERIFIED_DRAMATIQ}); missing: {'; '.join(gaps)}. Install a dramatiq version "
            "in the range pyproject.toml pins, or re-verify the fast path against this one"
        )


def _hooks_enqueue(middleware: Middleware) -> bool:
    kind = type(middleware)
    return (
        kind.before_enqueue is not Middleware.before_enqueue
        or kind.after_enqueue is not Middleware.after_enqueue
    )


def uses_fast_path(broker: dramatiq.Broker) -> TypeGuard[RedisBroker]:
    """Can `enqueue_many` stand in for `broker.enqueue`? Not if a middleware hooks enqueue."""
    return isinstance(broker, RedisBroker) and not any(map(_hooks_enqueue, broker.middleware))


def message_present(broker: RedisBroker, queue_name: str, message_key: str) -> bool:
    """Does Redis still hold this message, on its queue or its delay queue?"""
    ns = broker.namespace
    pipe = broker.client.pipeline(transaction=False)
    pipe.hexists(f"{ns}:{queue_name}.msgs", message_key)
    pipe.hexists(f"{ns}:{dq_name(queue_name)}.msgs", message_key)
    return any(pipe.execute())


def queue_counts(
    client: redis.Redis, namespace: str, queues: Sequence[str]
) -> list[tuple[int, int, int, int]]:
    """`(ready, held, delayed, dead)` per queue; held counts ready and in-flight messages."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(f"{namespace}:{queue}")
        pipe.hlen(f"{namespace}:{queue}.msgs")
        pipe.hlen(f"{namespace}:{dq_name(queue)}.msgs")
        pipe.zcard(f"{namespace}:{xq_name(queue)}")
    values = [int(v) for v in pipe.execute()]
    return [
        (values[i], values[i + 1], values[i + 2], values[i + 3]) for i in range(0, len(values), 4)
    ]


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


def enqueue_many(
    broker: RedisBroker, calls: Sequence[tuple[str, str, tuple[Any, ...]]]
) -> list[str]:
    """Enqueue one message per `(queue_name, actor_name, args)`; returns each message's
    `redis_message_id`. Raises redis errors as they come (the caller decides what failed)."""
    if not calls:
        return []
    client = broker.client
    sha = client.script_load(broker.scripts["dispatch"].script)  # idempotent; survives a restart
    encoder = dramatiq.get_encoder()
    now = current_millis()
    head = b"*14\r\n" + b"".join(
        _bulk(part)
        for part in (b"EVALSHA", sha.encode(), b"1", broker.namespace.encode(), b"enqueue")
    )
    head += _bulk(str(now).encode())
    middles: dict[str, bytes] = {}
    templates: dict[tuple[str, str], dict[str, Any]] = {}
    packed: list[bytes] = []
    keys: list[str] = []
    for queue_name, actor_name, args in calls:
        middle = middles.get(queue_name)
        if middle is None:
            fields = (
                queue_name,
                broker.broker_id,
                broker.heartbeat_timeout,
                broker.dead_message_ttl,
                0,  # no maintenance from here: consumers do it
                broker._max_unpack_size(),  # type: ignore[no-untyped-call]
            )
            middle = middles[queue_name] = b"".join(_bulk(str(f).encode()) for f in fields)
        template = templates.get((queue_name, actor_name))
        if template is None:
            template = templates[(queue_name, actor_name)] = dramatiq.Message(
                queue_name=queue_name, actor_name=actor_name, args=(), kwargs={}, options={}
            ).asdict()
        key = str(uuid.uuid4())
        data = {
            **template,
            "args": args,
            "options": {"redis_message_id": key},
            "message_id": str(uuid.uuid4()),
            "message_timestamp": now,
        }
        packed.append(head + middle + _bulk(key.encode()) + _bulk(encoder.encode(data)))
        keys.append(key)
    connection = client.connection_pool.get_connection()
    try:
        connection.send_packed_command([b"".join(packed)])
        for _ in packed:
            connection.read_response()
    except BaseException:
        connection.disconnect()  # replies may be left unread
        raise
    finally:
        client.connection_pool.release(connection)
    return keys
