"""The store contract, migrations: empty and existing databases, newer schemas, races."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from agenthost.clock import ManualClock
from agenthost.errors import SchemaVersionError
from agenthost.stores import StoreOptions, open_store, upgrade
from agenthost.stores.url import sqlite_path

from .turns import turn

pytestmark = pytest.mark.durable


def versions(url: str) -> tuple[int, ...]:
    """The migrations of the backend: SQL stores have the knowledge tables (2), Redis not."""
    return (1,) if url.startswith("redis") else (1, 2)


async def test_upgrade_an_empty_database_then_again(store_url: str) -> None:
    latest = versions(store_url)
    first = await upgrade(store_url)
    assert (first.version, first.applied) == (latest[-1], latest)
    second = await upgrade(store_url)
    assert (second.version, second.applied) == (latest[-1], ())


async def test_reopening_an_existing_database_keeps_its_data(
    store_url: str, clock: ManualClock
) -> None:
    async with open_store(store_url, clock=clock) as store:
        session = await store.create_session(owner=None, agent="assistant")
        await turn(store, session.id, "remember me", "I will")
    assert (await upgrade(store_url)).applied == ()
    async with open_store(store_url, clock=clock) as store:
        history = await store.read_page(session.id)
        assert [m.message.content for m in history] == ["remember me", "I will"]


async def test_concurrent_upgrades_apply_each_migration_once(store_url: str) -> None:
    results = await asyncio.gather(*(upgrade(store_url) for _ in range(4)))
    assert sorted(r.applied for r in results) == [(), (), (), versions(store_url)]
    assert {r.version for r in results} == {versions(store_url)[-1]}


async def test_many_openers_of_a_new_sqlite_database_all_succeed(tmp_path: Path) -> None:
    # Switching a new file to WAL needs an exclusive lock that SQLite refuses at once,
    # without waiting out its busy timeout, when another opener holds a lock: a race
    # that workers starting together lose now and then. Many fresh files make it likely.
    for attempt in range(25):
        url = f"sqlite:///{tmp_path / str(attempt) / 'agenthost.db'}"
        results = await asyncio.gather(*(upgrade(url) for _ in range(8)))
        assert sorted(r.applied for r in results) == [()] * 7 + [(1, 2)]


async def test_a_schema_newer_than_the_code_is_refused(store_url: str) -> None:
    await upgrade(store_url)
    await record_version(store_url, 99)
    with pytest.raises(SchemaVersionError, match="99"):
        async with open_store(store_url):
            pass
    with pytest.raises(SchemaVersionError):
        await upgrade(store_url)


async def test_without_migrate_an_outdated_database_is_refused(store_url: str) -> None:
    with pytest.raises(SchemaVersionError, match="db upgrade"):
        async with open_store(store_url, options=StoreOptions(migrate=False)):
            pass
    await upgrade(store_url)
    async with open_store(store_url, options=StoreOptions(migrate=False)) as store:
        await store.ping()


async def record_version(url: str, version: int) -> None:
    """Pretend newer code migrated this database."""
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(url)) as connection:
            connection.execute(
                "INSERT INTO schema_migrations VALUES (?, 'from the future', 0)", (version,)
            )
        connection.close()
    elif url.startswith("postgresql"):
        import asyncpg

        connection = await asyncpg.connect(url)
        try:
            await connection.execute(
                "INSERT INTO schema_migrations VALUES ($1, 'from the future', 0)", version
            )
        finally:
            await connection.close()
    else:
        import redis.asyncio as aioredis

        from agenthost.stores.redis_client import split_url

        client_url, layout = split_url(url)
        client = aioredis.Redis.from_url(client_url)
        try:
            await client.hset(layout.schema, str(version), "0")
        finally:
            await client.aclose()
