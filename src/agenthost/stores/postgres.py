"""PostgreSQL for the SQL store: an asyncpg pool, one transaction per write.

The queries are the SQL store's (``sql.py``), with ``?`` placeholders rewritten
to ``$n``. Migrations run under a transaction-scoped advisory lock, so replicas
starting together apply each one once. A server that is down, restarting, out
of connections or too slow raises ``StoreUnavailableError`` naming the server
(never the password); the pool replaces broken connections, so the store works
again as soon as the server is back.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime

import asyncpg

from agenthost.clock import Clock
from agenthost.errors import StoreUnavailableError
from agenthost.stores.base import StoreOptions
from agenthost.stores.migrations import Migration, SchemaStatus
from agenthost.stores.migrations.postgres import POSTGRES_MIGRATIONS
from agenthost.stores.sql import SQLSessionStore
from agenthost.stores.sql_database import DuplicateKeyError, Row, migrate
from agenthost.stores.url import describe_url

_log = logging.getLogger("agenthost.stores.postgres")

# Failures of the server or the network, as opposed to bugs in a query.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.exceptions.InvalidCatalogNameError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,  # e.g. the server ended the session mid-query
)


class PostgresSessionStore(SQLSessionStore):
    """The SQL store on PostgreSQL (see ``sql.py``)."""


@asynccontextmanager
async def open_postgres_store(
    url: str, *, clock: Clock, options: StoreOptions
) -> AsyncIterator[PostgresSessionStore]:
    db = await PostgresDatabase.connect(url, options=options)
    try:
        await migrate(db, clock=clock, migrate=options.migrate)
        yield PostgresSessionStore(db, clock=clock, options=options)
    finally:
        await db.close()


async def upgrade_postgres(url: str, *, clock: Clock, options: StoreOptions) -> SchemaStatus:
    db = await PostgresDatabase.connect(url, options=options)
    try:
        return await migrate(db, clock=clock, migrate=True)
    finally:
        await db.close()


class PostgresConnection:
    def __init__(self, connection: asyncpg.Connection, where: str) -> None:
        self._connection = connection
        self._where = where

    async def fetchone(self, sql: str, *params: object) -> Row | None:
        with _translated(self._where):
            row = await self._connection.fetchrow(_numbered(sql), *params)
        return None if row is None else tuple(row)

    async def fetchall(self, sql: str, *params: object) -> list[Row]:
        with _translated(self._where):
            rows = await self._connection.fetch(_numbered(sql), *params)
        return [tuple(row) for row in rows]

    async def execute(self, sql: str, *params: object) -> int:
        with _translated(self._where):
            status: str = await self._connection.execute(_numbered(sql), *params)
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        with _translated(self._where):
            await self._connection.executemany(_numbered(sql), rows)


class PostgresDatabase:
    backend = "postgres"
    migrations: Sequence[Migration] = POSTGRES_MIGRATIONS

    def __init__(self, pool: asyncpg.Pool, *, where: str, timeout: float) -> None:
        self._pool = pool
        self._where = where
        self._timeout = timeout

    @classmethod
    async def connect(cls, url: str, *, options: StoreOptions) -> PostgresDatabase:
        where = describe_url(url)
        with _translated(where):
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=options.pool_size,
                timeout=options.timeout,
                command_timeout=options.timeout,
            )
        return cls(pool, where=where, timeout=options.timeout)

    async def close(self) -> None:
        await self._pool.close()

    def time(self, moment: datetime) -> object:
        return moment

    @asynccontextmanager
    async def read(self) -> AsyncIterator[PostgresConnection]:
        async with self._renewing(), self._pool.acquire(timeout=self._timeout) as connection:
            yield PostgresConnection(connection, self._where)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[PostgresConnection]:
        async with (
            self._renewing(),
            self._pool.acquire(timeout=self._timeout) as connection,
            connection.transaction(),
        ):
            yield PostgresConnection(connection, self._where)

    @asynccontextmanager
    async def _renewing(self) -> AsyncIterator[None]:
        """Translate errors; after an outage, replace every pooled connection, not just one."""
        try:
            with _translated(self._where):
                yield
        except StoreUnavailableError:
            await self._pool.expire_connections()
            raise

    @asynccontextmanager
    async def migration_lock(self) -> AsyncIterator[PostgresConnection]:
        async with self.write() as connection:
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.agenthost.migrate'))"
            )
            yield connection


@functools.lru_cache(maxsize=256)
def _numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (our SQL has no ``?`` in literals)."""
    counter = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


@contextmanager
def _translated(where: str) -> Iterator[None]:
    try:
        yield
    except asyncpg.UniqueViolationError as error:
        raise DuplicateKeyError(str(error)) from None
    except ValueError:
        raise  # asyncpg's DataError, ClientConfigurationError: bugs or bad settings, not outages
    except _UNAVAILABLE as error:
        _log.warning("PostgreSQL at %s: %s: %s", where, type(error).__name__, error)
        raise StoreUnavailableError(
            f"The PostgreSQL database at {where} is unavailable; try again shortly"
        ) from None
