"""Fixtures for the store contract: one suite, every backend.

``store`` is parametrized over memory, SQLite (in ``tmp_path``), PostgreSQL and
Redis on loopback. PostgreSQL gets a database made for this test run (dropped at
the end) and a fresh schema per test; Redis gets a fresh key prefix per test,
whose keys are deleted afterwards (never a FLUSH). When a server is not
reachable the test fails under CI (``CI=true``) and is skipped, with the reason,
elsewhere. ``STORE_TEST_POSTGRES_URL`` / ``STORE_TEST_REDIS_URL`` point elsewhere.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from agenthost.clock import ManualClock
from agenthost.stores import Store, open_store
from tests.support.services import postgres_base, redis_base, require_service

BACKENDS = ("memory", "sqlite", "postgres", "redis")
DURABLE = ("sqlite", "postgres", "redis")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database for this test run, dropped at the end; yields its URL."""
    base = postgres_base()
    require_service("PostgreSQL", base)
    import asyncpg

    name = f"agenthost_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(base)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    def blocking(sql: str) -> None:
        # In its own thread: this fixture may be first needed inside a running event loop.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, admin(sql)).result()

    blocking(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    finally:
        blocking(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL to an empty store of the backend named by the test's ``backend`` parameter."""
    backend: str = request.param
    match backend:
        case "memory":
            yield "memory://"
        case "sqlite":
            yield f"sqlite:///{tmp_path / 'store' / 'agenthost.db'}"
        case "postgres":
            database: str = request.getfixturevalue("postgres_database")
            async with postgres_schema(database) as url:
                yield url
        case "redis":
            require_service("Redis", redis_base())
            async with redis_prefix(redis_base()) as url:
                yield url
        case _:
            raise ValueError(backend)


@pytest.fixture
async def store(store_url: str, clock: ManualClock) -> AsyncIterator[Store]:
    async with open_store(store_url, clock=clock) as opened:
        yield opened


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that uses a store once per backend (``durable`` marks: no memory)."""
    if "store_url" in metafunc.fixturenames:
        durable = metafunc.definition.get_closest_marker("durable") is not None
        backends = DURABLE if durable else BACKENDS
        metafunc.parametrize("store_url", backends, indirect=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "durable: run on the durable backends only (not memory)")


class postgres_schema:  # noqa: N801 (used like the context manager it is)
    """A fresh schema in the test database; the URL selects it through ``search_path``."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._schema = f"t_{uuid.uuid4().hex[:12]}"

    async def __aenter__(self) -> str:
        await _postgres(self._database_url, f'CREATE SCHEMA "{self._schema}"')
        return f"{self._database_url}?search_path={self._schema}"

    async def __aexit__(self, *exc: object) -> None:
        await _postgres(self._database_url, f'DROP SCHEMA "{self._schema}" CASCADE')


class redis_prefix:  # noqa: N801
    """A fresh key prefix; its keys are deleted on exit (the rest of the server is untouched)."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url
        self._prefix = f"agenthost-test-{uuid.uuid4().hex[:12]}"

    async def __aenter__(self) -> str:
        return f"{self._base_url}?prefix={self._prefix}"

    async def __aexit__(self, *exc: object) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self._base_url)
        try:
            keys = [key async for key in client.scan_iter(match=f"{self._prefix}:*", count=1000)]
            for start in range(0, len(keys), 500):
                await client.unlink(*keys[start : start + 500])
        finally:
            await client.aclose()


async def _postgres(url: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()
