"""Concurrent streams per caller: a table of running replies, each with an expiry.

A slot is taken when a reply starts and given back when it ends. Each slot
expires after ``ttl`` seconds (the longest a turn may run), so a process that
dies with slots taken frees them by itself. On Redis the table is a sorted set
per caller, scored by expiry, and taking a slot is one Lua script (prune
expired, count, add), so it holds across workers and replicas.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from agenthost.errors import RateLimitedError, StoreUnavailableError
from agenthost.ratelimit.base import StreamSlot

if TYPE_CHECKING:
    from redis.asyncio import Redis

KEY_PREFIX = "agenthost:streams:"

_ACQUIRE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
local limit = tonumber(ARGV[3])
if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) - now_ms}
end
local ttl_ms = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now_ms + ttl_ms, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl_ms)
return {1, 0}
"""


class StreamTable(Protocol):
    async def acquire(self, identity: str, run_id: str, limit: int) -> StreamSlot: ...

    async def aclose(self) -> None: ...


def _too_many(limit: int, retry_after: float) -> RateLimitedError:
    return RateLimitedError(
        f"Too many replies running at once: the limit is {limit}; wait for one to finish",
        limit="streams",
        retry_after=max(1.0, retry_after),
        headers={"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0"},
    )


@dataclass
class _MemorySlot:
    table: dict[str, dict[str, float]]
    identity: str
    run_id: str

    async def release(self) -> None:
        self.table.get(self.identity, {}).pop(self.run_id, None)


class MemoryStreamTable:
    def __init__(self, *, ttl: float) -> None:
        self._ttl = ttl
        self._slots: dict[str, dict[str, float]] = {}

    async def acquire(self, identity: str, run_id: str, limit: int) -> StreamSlot:
        now = time.monotonic()
        slots = self._slots.setdefault(identity, {})
        for expired in [rid for rid, until in slots.items() if until <= now]:
            del slots[expired]
        if limit and len(slots) >= limit:
            raise _too_many(limit, min(slots.values()) - now)
        slots[run_id] = now + self._ttl
        return _MemorySlot(self._slots, identity, run_id)

    async def aclose(self) -> None:
        self._slots.clear()


@dataclass
class _RedisSlot:
    redis: Redis
    key: str
    run_id: str

    async def release(self) -> None:
        from redis.exceptions import RedisError

        with contextlib.suppress(RedisError):  # it expires by itself; never fail a run for it
            await self.redis.zrem(self.key, self.run_id)


class RedisStreamTable:
    def __init__(self, url: str, *, ttl: float) -> None:
        from redis.asyncio import Redis

        self._redis: Redis = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._ttl_ms = int(ttl * 1000)
        self._acquire = self._redis.register_script(_ACQUIRE)

    async def acquire(self, identity: str, run_id: str, limit: int) -> StreamSlot:
        from redis.exceptions import RedisError

        key = KEY_PREFIX + identity
        try:
            taken, wait_ms = await self._acquire(keys=[key], args=[run_id, self._ttl_ms, limit])
        except RedisError:
            raise StoreUnavailableError("The rate-limit store is unavailable") from None
        if not taken:
            raise _too_many(limit, int(wait_ms) / 1000)
        return _RedisSlot(self._redis, key, run_id)

    async def aclose(self) -> None:
        await self._redis.aclose()
