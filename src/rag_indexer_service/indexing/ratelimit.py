"""Global limits on embedding requests and tokens per window, shared by every process.

A sliding-window log: each admitted request is an entry (time, estimated tokens). A request is
admitted when the last `window_s` holds fewer than `requests` entries and their tokens plus its
own stay within `tokens`; otherwise the caller sleeps until enough entries leave the window.
Unlike a token bucket, no window of `window_s` ever holds more than the limit, which is how
providers count.

A limiter also holds a *cool-down*: when the provider answers 429 with `Retry-After`, its limit
is the account's, not the request's, so `pause(s)` makes every later `acquire` (every slot of
every process sharing the limiter) wait until `s` seconds have passed.

`RedisRateLimiter` keeps the log and the cool-down in Redis, checked and appended to atomically
by Lua scripts on Redis's clock, so all workers on all machines share one budget.
`LocalRateLimiter` keeps them in memory when there is no Redis (one process, `rag-indexer up`).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from rag_indexer_service.config import Settings
from rag_indexer_service.errors import EmbeddingUnavailable

__all__ = [
    "LocalRateLimiter",
    "RateLimiter",
    "RateLimits",
    "RedisRateLimiter",
    "build_rate_limiter",
]


@dataclass(frozen=True, slots=True)
class RateLimits:
    """At most `requests` requests and `tokens` tokens in any `window_s` (None: no limit)."""

    requests: int | None
    tokens: int | None
    window_s: float = 60.0

    @classmethod
    def per_minute(cls, rpm: int | None, tpm: int | None, *, window_s: float = 60.0) -> RateLimits:
        """Per-minute budgets scaled to a window of `window_s` (at least 1 per window)."""

        def scale(per_minute: int | None) -> int | None:
            return None if per_minute is None else max(1, math.floor(per_minute * window_s / 60))

        return cls(requests=scale(rpm), tokens=scale(tpm), window_s=window_s)

    @classmethod
    def unlimited(cls) -> RateLimits:
        return cls(requests=None, tokens=None)

    @property
    def enabled(self) -> bool:
        return self.requests is not None or self.tokens is not None

    def clamp(self, tokens: int) -> int:
        """A request larger than the whole token budget counts as exactly the budget."""
        return tokens if self.tokens is None else min(tokens, self.tokens)


class RateLimiter(Protocol):
    async def acquire(self, tokens: int) -> float:
        """Wait until one request of `tokens` estimated tokens fits and no cool-down runs;
        returns seconds waited."""
        ...

    async def pause(self, seconds: float) -> None:
        """Start (or extend) a cool-down: no `acquire` returns before `seconds` from now."""
        ...

    async def aclose(self) -> None: ...


class LocalRateLimiter:
    """The sliding-window log in this process's memory."""

    def __init__(self, limits: RateLimits, *, clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self._clock = clock
        self._log: deque[tuple[float, int]] = deque()
        self._tokens_in_window = 0
        self._paused_until = 0.0

    def try_admit(self, tokens: int, now: float) -> float:
        """0 after recording the request, else the seconds until it could fit."""
        if now < self._paused_until:
            return self._paused_until - now
        if not self.limits.enabled:
            return 0.0
        tokens = self.limits.clamp(tokens)
        window = self.limits.window_s
        while self._log and self._log[0][0] <= now - window:
            self._tokens_in_window -= self._log.popleft()[1]
        wait = 0.0
        limit = self.limits.requests
        if limit is not None and len(self._log) >= limit:
            wait = self._log[len(self._log) - limit][0] + window - now
        if self.limits.tokens is not None:
            excess = self._tokens_in_window + tokens - self.limits.tokens
            freed = 0
            for at, spent in self._log:
                if excess <= 0:
                    break
                freed += spent
                if freed >= excess:
                    wait = max(wait, at + window - now)
                    break
        if wait > 0:
            return wait
        self._log.append((now, tokens))
        self._tokens_in_window += tokens
        return 0.0

    async def acquire(self, tokens: int) -> float:
        started = self._clock()
        while (wait := self.try_admit(tokens, self._clock())) > 0:
            await asyncio.sleep(wait)
        return self._clock() - started

    async def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def aclose(self) -> None:
        return None


# KEYS[1]: the log (sorted set, score = admission time in ms, member = "<uuid>:<tokens>");
# KEYS[2]: the cool-down (Redis time in ms until which nobody is admitted).
# ARGV: window_ms, max_requests (0: off), max_tokens (0: off), tokens, uuid.
# Returns 0 when admitted (and logged), else the milliseconds to wait before trying again.
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused_until = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused_until > now then
  return paused_until - now
end
local window = tonumber(ARGV[1])
local max_requests = tonumber(ARGV[2])
local max_tokens = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
if max_requests == 0 and max_tokens == 0 then
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local log = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local count = #log / 2
local wait = 0
if max_requests > 0 and count >= max_requests then
  wait = tonumber(log[2 * (count - max_requests + 1)]) + window - now
end
if max_tokens > 0 then
  local used = 0
  for i = 1, count do
    used = used + tonumber(string.match(log[2 * i - 1], ':(%d+)$'))
  end
  local excess = used + tokens - max_tokens
  local freed = 0
  for i = 1, count do
    if excess <= 0 then break end
    freed = freed + tonumber(string.match(log[2 * i - 1], ':(%d+)$'))
    if freed >= excess then
      wait = math.max(wait, tonumber(log[2 * i]) + window - now)
      break
    end
  end
end
if wait > 0 then
  return wait
end
redis.call('ZADD', KEYS[1], now, ARGV[5] .. ':' .. tokens)
redis.call('PEXPIRE', KEYS[1], window + 1000)
return 0
"""

# KEYS[1]: the cool-down; ARGV[1]: its length in ms. Only ever extends a running cool-down.
_PAUSE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if now + ms > current then
  redis.call('SET', KEYS[1], now + ms, 'PX', ms + 1000)
end
return 0
"""


class RedisRateLimiter:
    """The sliding-window log and the cool-down in Redis, shared by every process using the
    same key."""

    def __init__(self, url: str, key: str, limits: RateLimits) -> None:
        self.limits = limits
        self.key = key
        self.pause_key = f"{key}:cool-down"
        self._url = url
        self._client: aioredis.Redis | None = None
        self._scripts: tuple[AsyncScript, AsyncScript] | None = None

    def _connect(self) -> tuple[AsyncScript, AsyncScript]:
        # Built on first use, on the event loop that uses it.
        if self._client is None or self._scripts is None:
            self._client = aioredis.Redis.from_url(
                self._url, socket_timeout=10, socket_connect_timeout=10
            )
            self._scripts = (
                self._client.register_script(_ACQUIRE_LUA),
                self._client.register_script(_PAUSE_LUA),
            )
        return self._scripts

    @staticmethod
    def _unavailable(exc: RedisError) -> EmbeddingUnavailable:
        return EmbeddingUnavailable(
            f"the embedding rate limiter cannot reach Redis: {type(exc).__name__}: {exc}"
        )

    async def try_admit(self, tokens: int) -> float:
        """0 after recording the request, else the seconds until it could fit."""
        args: list[int | str] = [
            max(1, round(self.limits.window_s * 1000)),
            self.limits.requests or 0,
            self.limits.tokens or 0,
            self.limits.clamp(tokens),
            uuid.uuid4().hex,
        ]
        admit, _ = self._connect()
        try:
            wait_ms = int(await admit(keys=[self.key, self.pause_key], args=args))
        except RedisError as exc:
            raise self._unavailable(exc) from exc
        return max(0, wait_ms) / 1000

    async def pause(self, seconds: float) -> None:
        _, pause = self._connect()
        try:
            await pause(keys=[self.pause_key], args=[max(1, math.ceil(seconds * 1000))])
        except RedisError as exc:
            raise self._unavailable(exc) from exc

    async def acquire(self, tokens: int) -> float:
        started = time.monotonic()
        while (wait := await self.try_admit(tokens)) > 0:
            # A little jitter so processes woken together do not all retry in the same ms.
            await asyncio.sleep(wait + random.uniform(0, 0.01))
        return time.monotonic() - started

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = self._scripts = None


def build_rate_limiter(settings: Settings, *, scope: str) -> RateLimiter:
    """The limiter `settings` ask for. `scope` names what the budget belongs to (one API
    account and model); processes with the same scope share it, and its cool-down, through
    Redis whenever there is one, even without RPM/TPM limits."""
    limits = RateLimits.per_minute(
        settings.embedding_rpm, settings.embedding_tpm, window_s=settings.embedding_rate_window_s
    )
    if settings.broker_url is None:
        return LocalRateLimiter(limits)
    digest = hashlib.blake2b(scope.encode("utf-8"), digest_size=8).hexdigest()
    return RedisRateLimiter(settings.broker_url, f"rag-indexer:embedding-rate:{digest}", limits)
