"""What only the Redis store does: optional expiry of idle sessions."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import redis.asyncio as aioredis

from agenthost.errors import SessionNotFoundError
from agenthost.stores import StoreOptions, open_store
from agenthost.stores.redis_client import split_url
from tests.support.services import redis_base, require_service

from .conftest import redis_prefix
from .turns import turn


async def test_sessions_never_expire_by_default() -> None:
    require_service("Redis", redis_base())
    async with redis_prefix(redis_base()) as url, open_store(url) as store:
        session = await store.create_session(owner=None, agent="assistant")
        await turn(store, session.id)
        client_url, layout = split_url(url)
        client = aioredis.Redis.from_url(client_url)
        try:
            assert await client.pttl(layout.session(session.id)) == -1
            assert await client.pttl(layout.messages(session.id)) == -1
        finally:
            await client.aclose()


async def test_with_a_ttl_idle_sessions_go_away_whole() -> None:
    require_service("Redis", redis_base())
    options = StoreOptions(redis_ttl=timedelta(seconds=1))
    async with redis_prefix(redis_base()) as url, open_store(url, options=options) as store:
        kept = await store.create_session(owner=None, agent="assistant")
        idle = await store.create_session(owner=None, agent="assistant")
        await turn(store, idle.id)
        for _ in range(4):  # writes keep a session alive
            await asyncio.sleep(0.3)
            await turn(store, kept.id)
        await asyncio.sleep(0.3)
        with pytest.raises(SessionNotFoundError):
            await store.get_session(idle.id)
        assert (await store.get_session(kept.id)).message_count == 8
        assert [s.id for s in (await store.list_sessions(owner=None)).sessions] == [kept.id]
        client_url, layout = split_url(url)
        client = aioredis.Redis.from_url(client_url)
        try:
            assert not await client.exists(layout.messages(idle.id))
            assert await client.zcard(layout.owner(None)) == 1  # the listing forgot it
        finally:
            await client.aclose()
