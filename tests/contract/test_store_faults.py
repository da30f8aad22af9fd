"""Bad URLs and broken databases: clear errors, no secrets in them, recovery afterwards."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from agenthost.clock import ManualClock
from agenthost.errors import ConfigurationError, StoreUnavailableError
from agenthost.stores import SessionId, StoreOptions, open_store, redact_url
from agenthost.stores.url import backend_of, describe_url, sqlite_path
from tests.support.services import redis_base, require_service

from .conftest import postgres_schema, redis_prefix
from .turns import turn

SECRET = "s3cret-pa55"
FAST = StoreOptions(timeout=0.5)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://agenthost:{SECRET}@127.0.0.1:1/agenthost",
        f"redis://:{SECRET}@127.0.0.1:1/0",
    ],
)
async def test_an_unreachable_server_is_unavailable_and_the_password_stays_secret(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(StoreUnavailableError) as raised:
        async with open_store(url, options=FAST):
            pass
    assert SECRET not in str(raised.value)
    assert "127.0.0.1:1" in str(raised.value)
    assert SECRET not in caplog.text


async def test_an_unusable_sqlite_path_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailableError):
        async with open_store(f"sqlite:///{blocker / 'agenthost.db'}", options=FAST):
            pass


async def test_a_locked_sqlite_database_is_unavailable_until_it_is_free(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'agenthost.db'}"
    async with open_store(url, options=StoreOptions(timeout=0.2)) as store:
        other = sqlite3.connect(sqlite_path(url), isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StoreUnavailableError, match="locked"):
                await store.create_session(owner=None, agent="assistant")
            other.execute("ROLLBACK")
        finally:
            other.close()
        session = await store.create_session(owner=None, agent="assistant")
        assert (await store.get_session(session.id)).id == session.id


async def test_postgres_recovers_after_its_connections_are_killed(
    postgres_database: str,
) -> None:
    async with postgres_schema(postgres_database) as url, open_store(url, options=FAST) as store:
        session = await store.create_session(owner=None, agent="assistant")
        await asyncio.gather(*(store.get_session(session.id) for _ in range(5)))  # 5 connections
        import asyncpg

        admin = await asyncpg.connect(postgres_database)
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert killed >= 1
        outcomes: list[SessionId | None] = []
        for _ in range(2):  # at most one failure: then the whole pool is renewed
            try:
                outcomes.append((await store.get_session(session.id)).id)
            except StoreUnavailableError:
                outcomes.append(None)
        assert outcomes[-1] == session.id


async def test_redis_recovers_after_its_connections_are_killed() -> None:
    require_service("Redis", redis_base())
    import redis.asyncio as aioredis

    name = "agenthost-fault-test"
    async with (
        redis_prefix(redis_base()) as url,
        open_store(f"{url}&client_name={name}", options=FAST) as store,
    ):
        session = await store.create_session(owner=None, agent="assistant")
        admin = aioredis.Redis.from_url(redis_base(), decode_responses=True)
        try:
            for client in await admin.client_list():
                if client["name"] == name:
                    await admin.client_kill_filter(_id=client["id"])
        finally:
            await admin.aclose()
        outcomes: list[SessionId | None] = []
        for _ in range(3):
            try:
                outcomes.append((await store.get_session(session.id)).id)
            except StoreUnavailableError:
                outcomes.append(None)
        assert outcomes[-1] == session.id


async def test_redis_warns_when_it_would_lose_data(caplog: pytest.LogCaptureFixture) -> None:
    require_service("Redis", redis_base())
    import redis.asyncio as aioredis

    admin = aioredis.Redis.from_url(redis_base(), decode_responses=True)
    try:
        aof = str((await admin.info("persistence")).get("aof_enabled")) == "1"
    finally:
        await admin.aclose()
    caplog.set_level(logging.WARNING, logger="agenthost.stores.redis")
    async with redis_prefix(redis_base()) as url, open_store(url):
        pass
    assert ("appendonly" in caplog.text) is not aof


@pytest.mark.parametrize(
    "url", ["mysql://db/agenthost", "sqlite://", "sqlite:///", "sqlite:///:memory:", "nonsense"]
)
async def test_a_bad_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError):
        async with open_store(url):
            pass


def test_urls_are_redacted_for_messages() -> None:
    url = f"postgresql://agenthost:{SECRET}@db.internal:5432/agenthost?sslmode=require"
    assert (
        redact_url(url) == "postgresql://agenthost:***@db.internal:5432/agenthost?sslmode=require"
    )
    assert describe_url(url) == "postgresql://db.internal:5432/agenthost"
    assert redact_url(redis_base()) == redis_base()
    assert backend_of("postgres://x/y") == "postgres"
    assert backend_of("rediss://x") == "redis"
    assert sqlite_path("sqlite:///./data/agenthost.db") == Path("data/agenthost.db")
    assert sqlite_path("sqlite:////var/lib/agenthost.db") == Path("/var/lib/agenthost.db")


async def test_more_concurrent_calls_than_connections_wait_their_turn(
    store_url: str, clock: ManualClock
) -> None:
    async with open_store(store_url, clock=clock, options=StoreOptions(pool_size=2)) as store:
        sessions = await asyncio.gather(
            *(store.create_session(owner=None, agent="assistant") for _ in range(20))
        )
        await asyncio.gather(*(turn(store, s.id) for s in sessions))
        pages = await asyncio.gather(*(store.read_page(s.id) for s in sessions))
        assert all(len(page) == 2 for page in pages)
