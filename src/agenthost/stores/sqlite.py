"""SQLite for the SQL store: the default backend, one file, safe for several worker processes.

WAL mode lets readers run beside the one writer. Each process keeps one write
connection (its transactions queue on an ``asyncio.Lock``) and one read
connection. Every write transaction starts with ``BEGIN IMMEDIATE``, so writers
from several processes queue on SQLite's busy timeout instead of deadlocking;
a write that waits longer than the timeout raises ``StoreUnavailableError``.
aiosqlite runs each statement in the connection's own thread, so the event loop
never blocks on the disk.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import datetime
from pathlib import Path

import aiosqlite

from agenthost.clock import Clock
from agenthost.errors import StoreUnavailableError
from agenthost.stores.base import StoreOptions
from agenthost.stores.encoding import to_micros
from agenthost.stores.migrations import Migration, SchemaStatus
from agenthost.stores.migrations.sqlite import SQLITE_MIGRATIONS
from agenthost.stores.sql import SQLSessionStore
from agenthost.stores.sql_database import DuplicateKeyError, Row, migrate

_log = logging.getLogger("agenthost.stores.sqlite")


class SQLiteSessionStore(SQLSessionStore):
    """The SQL store on SQLite (see ``sql.py``)."""


@asynccontextmanager
async def open_sqlite_store(
    path: Path, *, clock: Clock, options: StoreOptions
) -> AsyncIterator[SQLiteSessionStore]:
    db = SQLiteDatabase(path, timeout=options.timeout)
    try:
        await db.open()
        await migrate(db, clock=clock, migrate=options.migrate)
        yield SQLiteSessionStore(db, clock=clock, options=options)
    finally:
        await db.close()


async def upgrade_sqlite(path: Path, *, clock: Clock, options: StoreOptions) -> SchemaStatus:
    db = SQLiteDatabase(path, timeout=options.timeout)
    try:
        await db.open()
        return await migrate(db, clock=clock, migrate=True)
    finally:
        await db.close()


class SQLiteConnection:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def fetchone(self, sql: str, *params: object) -> Row | None:
        with _translated():
            async with self._connection.execute(sql, params) as cursor:
                row = await cursor.fetchone()
        return None if row is None else tuple(row)

    async def fetchall(self, sql: str, *params: object) -> list[Row]:
        with _translated():
            rows = await self._connection.execute_fetchall(sql, params)
        return [tuple(row) for row in rows]

    async def execute(self, sql: str, *params: object) -> int:
        with _translated():
            async with self._connection.execute(sql, params) as cursor:
                return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        with _translated():
            await self._connection.executemany(sql, rows)


class SQLiteDatabase:
    backend = "sqlite"
    migrations: Sequence[Migration] = SQLITE_MIGRATIONS

    def __init__(self, path: Path, *, timeout: float) -> None:
        self._path = path
        self._timeout = timeout
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        with _translated():
            await asyncio.to_thread(self._path.parent.mkdir, parents=True, exist_ok=True)
            self._writer = await self._connect()
            self._reader = await self._connect()

    async def close(self) -> None:
        for connection in (self._reader, self._writer):
            if connection is not None:
                await connection.close()
        self._reader = self._writer = None

    def time(self, moment: datetime) -> object:
        return to_micros(moment)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SQLiteConnection]:
        yield SQLiteConnection(self._open(self._reader))

    @asynccontextmanager
    async def write(self) -> AsyncIterator[SQLiteConnection]:
        async with self._write_lock:
            connection = self._open(self._writer)
            try:
                with _translated():
                    await _run(connection, "BEGIN IMMEDIATE")
                yield SQLiteConnection(connection)
                with _translated():
                    await _run(connection, "COMMIT")
            except BaseException:
                # Unconditionally: a cancelled BEGIN may still be queued in the connection's
                # thread, and statements run in order, so this ROLLBACK comes after it.
                with suppress(sqlite3.Error):
                    await _run(connection, "ROLLBACK")
                raise

    @asynccontextmanager
    async def migration_lock(self) -> AsyncIterator[SQLiteConnection]:
        # BEGIN IMMEDIATE already holds SQLite's one write lock, across processes.
        async with self.write() as connection:
            yield connection

    async def _connect(self) -> aiosqlite.Connection:
        connection = await aiosqlite.connect(
            self._path, timeout=self._timeout, isolation_level=None
        )
        try:
            await _run(connection, "PRAGMA foreign_keys = ON")
            # NORMAL is durable across process crashes in WAL mode; a power cut may
            # lose the last commits, never the database.
            await _run(connection, "PRAGMA synchronous = NORMAL")
            await _enter_wal(connection, patience=self._timeout)
        except BaseException:
            await connection.close()
            raise
        return connection

    def _open(self, connection: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if connection is None:
            raise StoreUnavailableError("The SQLite store is closed")
        return connection


async def _enter_wal(connection: aiosqlite.Connection, *, patience: float) -> None:
    """Switch to WAL, retrying while other connections race to do the same.

    Changing the journal mode needs an exclusive lock, and SQLite answers "database
    is locked" at once, without its busy handler, when another connection holds
    one; so several processes opening a new database together wait here instead.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    pause = 0.005
    while True:
        try:
            await _run(connection, "PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error).lower() or loop.time() >= deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.1)


async def _run(connection: aiosqlite.Connection, sql: str) -> None:
    async with connection.execute(sql):
        pass


@contextmanager
def _translated() -> Iterator[None]:
    """Turn sqlite3's errors into ours: a locked or broken database is unavailable."""
    try:
        yield
    except sqlite3.IntegrityError as error:
        if "UNIQUE" not in str(error):
            raise
        raise DuplicateKeyError(str(error)) from None
    except (sqlite3.OperationalError, OSError) as error:
        raise _unavailable(error) from None


def _unavailable(error: BaseException) -> StoreUnavailableError:
    text = str(error).lower()
    if "locked" in text or "busy" in text:
        return StoreUnavailableError(
            "The SQLite database is locked by another process; try again shortly"
        )
    _log.warning("SQLite error: %s", error)
    return StoreUnavailableError(
        "The SQLite database cannot be used (check its path, permissions and free disk space)"
    )
