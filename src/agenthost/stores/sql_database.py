"""The seam between the SQL store and a driver: SQLite (aiosqlite) or PostgreSQL (asyncpg).

``SQLSessionStore`` writes its queries once, in the SQL that SQLite and
PostgreSQL share (``?`` placeholders, ``RETURNING``, ``ON CONFLICT``, row values),
and runs them through an ``SQLDatabase``. An adapter owns what differs: how a
transaction starts and locks, placeholder syntax, how times are stored (integer
microseconds in SQLite, ``timestamptz`` in PostgreSQL), and turning the driver's
errors into ours. So both backends keep exactly the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

from agenthost.clock import Clock
from agenthost.stores.encoding import from_micros, to_micros
from agenthost.stores.migrations import Migration, SchemaStatus, pending, status_after

Row = tuple[Any, ...]


class DuplicateKeyError(ValueError):
    """An insert hit a unique key (raised by adapters for their driver's error)."""


class SQLConnection(Protocol):
    """One connection, inside a transaction when it came from ``SQLDatabase.write``."""

    async def fetchone(self, sql: str, *params: object) -> Row | None: ...

    async def fetchall(self, sql: str, *params: object) -> list[Row]: ...

    async def execute(self, sql: str, *params: object) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None: ...


class SQLDatabase(Protocol):
    backend: str
    migrations: Sequence[Migration]

    def read(self) -> AbstractAsyncContextManager[SQLConnection]:
        """A connection for reads (no transaction: each statement sees committed data)."""
        ...

    def write(self) -> AbstractAsyncContextManager[SQLConnection]:
        """A connection in a write transaction, committed when the block ends cleanly."""
        ...

    def migration_lock(self) -> AbstractAsyncContextManager[SQLConnection]:
        """A write transaction that also holds the database-wide migration lock."""
        ...

    def time(self, moment: datetime) -> object:
        """A time as this database stores it."""
        ...

    async def close(self) -> None: ...


def read_time(value: object) -> datetime:
    """A stored time back as an aware UTC datetime (microseconds or ``timestamptz``)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, int):
        return from_micros(value)
    raise ValueError(f"not a stored time: {value!r}")


def read_optional_time(value: object) -> datetime | None:
    return None if value is None else read_time(value)


async def migrate(db: SQLDatabase, *, clock: Clock, migrate: bool) -> SchemaStatus:
    """Apply the missing migrations in one transaction under the migration lock."""
    async with db.migration_lock() as c:
        await c.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
        )
        applied = [row[0] for row in await c.fetchall("SELECT version FROM schema_migrations")]
        label = "SQLite" if db.backend == "sqlite" else "PostgreSQL"
        todo = pending(applied, db.migrations, backend=label, migrate=migrate)
        for migration in todo:
            for statement in migration.statements:
                await c.execute(statement)
            await c.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                migration.version,
                migration.name,
                to_micros(clock.now()),
            )
        return status_after(db.backend, applied, todo)
