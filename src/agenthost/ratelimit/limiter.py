"""``LimitsRateLimiter``: rates with the ``limits`` library, streams with a slot table.

Rates use ``limits``' moving window, whose check-and-count is one atomic step
(a Lua script on Redis), so N workers and replicas sharing one Redis accept at
most N requests in total for a limit of N. Without Redis the counters live in
the process: limits then hold per worker (the server says so at startup).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from agenthost.auth.keys import Principal
from agenthost.errors import RateLimitedError, StoreUnavailableError
from agenthost.ratelimit.base import Quota, Reservation, StreamSlot
from agenthost.ratelimit.streams import MemoryStreamTable, RedisStreamTable, StreamTable

logger = logging.getLogger(__name__)

KEY_PREFIX = "agenthost:limits"
T = TypeVar("T")


@dataclass
class _TokenReservation:
    limiter: LimitsRateLimiter
    principal: Principal
    estimate: int

    async def settle(self, actual_tokens: int) -> None:
        extra = actual_tokens - self.estimate
        limit = self.principal.limits.tpm
        if extra > 0 and limit:
            # Over the estimate: charge the rest (it may exhaust the window; never refused).
            item = RateLimitItemPerMinute(limit)
            await self.limiter.charge(item, self.principal, "tpm", min(extra, limit))


@dataclass
class _NoReservation:
    async def settle(self, actual_tokens: int) -> None:
        return None


@dataclass
class _NoSlot:
    async def release(self) -> None:
        return None


class LimitsRateLimiter:
    def __init__(self, storage: Storage, streams: StreamTable, *, shared: bool) -> None:
        self._storage = storage
        self._window = MovingWindowRateLimiter(storage)
        self._streams = streams
        self.shared = shared

    @classmethod
    def create(cls, redis_url: str | None, *, stream_ttl: float) -> LimitsRateLimiter:
        if redis_url is None:
            return cls(MemoryStorage(), MemoryStreamTable(ttl=stream_ttl), shared=False)
        storage = RedisStorage(
            f"async+{redis_url}",
            implementation="redispy",
            key_prefix=KEY_PREFIX,
            wrap_exceptions=True,
        )
        return cls(storage, RedisStreamTable(redis_url, ttl=stream_ttl), shared=True)

    async def hit_request(self, principal: Principal) -> Quota | None:
        limit = principal.limits.rpm
        if not limit:
            return None
        item = RateLimitItemPerMinute(limit)
        allowed = await _guard(self._window.hit(item, "rpm", principal.limit_identity))
        quota = await self._quota(item, principal, "rpm")
        if not allowed:
            raise _limited(f"Rate limit reached: {limit} requests per minute", "requests", quota)
        return quota

    async def reserve_tokens(self, principal: Principal, estimate: int) -> Reservation:
        limit = principal.limits.tpm
        if not limit:
            return _NoReservation()
        item = RateLimitItemPerMinute(limit)
        cost = max(1, min(estimate, limit))
        allowed = await _guard(self._window.hit(item, "tpm", principal.limit_identity, cost=cost))
        if not allowed:
            quota = await self._quota(item, principal, "tpm")
            raise _limited(
                f"Token limit reached: {limit} model tokens per minute "
                f"(this request needs about {estimate})",
                "tokens",
                quota,
            )
        return _TokenReservation(self, principal, cost)

    async def open_stream(self, principal: Principal, run_id: str) -> StreamSlot:
        limit = principal.limits.max_streams
        if not limit:  # nothing to count against: no table entry, no round trip
            return _NoSlot()
        return await _guard(self._streams.acquire(principal.limit_identity, run_id, limit))

    async def charge(self, item: RateLimitItem, principal: Principal, kind: str, cost: int) -> None:
        await _guard(self._window.hit(item, kind, principal.limit_identity, cost=cost))

    async def aclose(self) -> None:
        await self._streams.aclose()

    async def _quota(self, item: RateLimitItem, principal: Principal, kind: str) -> Quota:
        stats = await _guard(self._window.get_window_stats(item, kind, principal.limit_identity))
        return Quota(limit=item.amount, remaining=stats.remaining, reset_at=stats.reset_time)


async def _guard(operation: Awaitable[T]) -> T:
    """Run a storage operation; a storage that cannot answer is a 503, not a crash."""
    try:
        return await operation
    except StorageError as exc:
        logger.warning("rate-limit storage failed: %s", type(exc.storage_error).__name__)
        raise StoreUnavailableError("The rate-limit store is unavailable") from None


def _limited(message: str, limit: str, quota: Quota) -> RateLimitedError:
    now = time.time()
    retry_after = max(1.0, quota.reset_at - now)
    return RateLimitedError(
        f"{message}; try again in {retry_after:.0f} s",
        limit=limit,
        retry_after=retry_after,
        headers=quota.headers(now),
    )
