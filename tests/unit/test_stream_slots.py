"""Concurrent-stream slots are taken only for callers that have a stream limit."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from agenthost.auth.keys import Limits, Principal
from agenthost.ratelimit.limiter import LimitsRateLimiter
from agenthost.ratelimit.streams import KEY_PREFIX
from tests.support.services import redis_base, require_service


def caller(max_streams: int | None) -> Principal:
    return Principal(None, "anon", None, False, Limits(max_streams=max_streams), uuid.uuid4().hex)


async def test_only_a_limited_caller_takes_a_slot_in_the_shared_table() -> None:
    url = redis_base()
    require_service("Redis", url)
    limiter = LimitsRateLimiter.create(url, stream_ttl=60)
    redis = Redis.from_url(url)
    try:
        unlimited, limited = caller(None), caller(2)
        free = await limiter.open_stream(unlimited, "run-a")
        held = await limiter.open_stream(limited, "run-b")
        assert not await redis.exists(KEY_PREFIX + unlimited.limit_identity)
        assert await redis.zcard(KEY_PREFIX + limited.limit_identity) == 1
        await free.release()
        await held.release()
        assert await redis.zcard(KEY_PREFIX + limited.limit_identity) == 0
    finally:
        await limiter.aclose()
        await redis.aclose()
