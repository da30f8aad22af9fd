"""Choosing a store from one URL (``AGENTHOST_DATABASE_URL``): ``open_store`` and ``upgrade``.

    sqlite:///./data/agenthost.db   a file, relative to the working directory (the default)
    sqlite:////var/lib/agenthost.db an absolute path (four slashes, as in SQLAlchemy)
    postgresql://user:pass@host:5432/db   PostgreSQL (the ``[postgres]`` extra)
    redis://host:6379/0?prefix=agenthost  Redis (the ``[redis]`` extra)
    memory://                        in-process, forgotten on exit (tests, demos)

The drivers for PostgreSQL and Redis are imported only when such a URL is
opened, so the optional extras stay optional. URLs can carry passwords:
``redact_url`` and ``describe_url`` are what logs and error messages show.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit, urlunsplit

from agenthost.clock import Clock, SystemClock
from agenthost.errors import ConfigurationError
from agenthost.stores.base import Store, StoreOptions
from agenthost.stores.migrations import SchemaStatus

DEFAULT_DATABASE_URL: Final = "sqlite:///./data/agenthost.db"
Backend = Literal["memory", "sqlite", "postgres", "redis"]


def backend_of(url: str) -> Backend:
    scheme = urlsplit(url).scheme.lower()
    match scheme:
        case "memory":
            return "memory"
        case "sqlite":
            return "sqlite"
        case "postgresql" | "postgres":
            return "postgres"
        case "redis" | "rediss" | "unix":
            return "redis"
        case _:
            raise ConfigurationError(
                f"Unknown database URL scheme {scheme!r} in {redact_url(url)}: use sqlite:///PATH,"
                " postgresql://..., redis://... or memory://"
            )


def sqlite_path(url: str) -> Path:
    """The file a ``sqlite:///`` URL names."""
    prefix = "sqlite:///"
    path = url[len(prefix) :].split("?", 1)[0] if url.startswith(prefix) else ""
    if not path or path == ":memory:":
        raise ConfigurationError(
            f"Bad SQLite URL {url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db"
            " (memory:// for a store that is not kept)"
        )
    return Path(path)


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def describe_url(url: str) -> str:
    """Where a URL points, for messages: scheme, host, port and path, no credentials or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{host}{port}", parts.path, "", ""))


@asynccontextmanager
async def open_store(
    url: str, *, clock: Clock | None = None, options: StoreOptions | None = None
) -> AsyncIterator[Store]:
    """Open the store a URL names, applying migrations first (unless ``options.migrate`` is off).

    Raises ``ConfigurationError`` for a bad URL or a missing extra,
    ``StoreUnavailableError`` if the database cannot be reached, and
    ``SchemaVersionError`` if its schema is newer than this code.
    """
    clock = clock or SystemClock()
    options = options or StoreOptions()
    match backend_of(url):
        case "memory":
            from agenthost.stores.memory import MemorySessionStore

            yield MemorySessionStore(clock=clock, options=options)
        case "sqlite":
            from agenthost.stores.sqlite import open_sqlite_store

            async with open_sqlite_store(sqlite_path(url), clock=clock, options=options) as store:
                yield store
        case "postgres":
            _require("asyncpg", "postgres")
            from agenthost.stores.postgres import open_postgres_store

            async with open_postgres_store(url, clock=clock, options=options) as pg_store:
                yield pg_store
        case "redis":
            _require("redis", "redis")
            from agenthost.stores.redis import open_redis_store

            async with open_redis_store(url, clock=clock, options=options) as redis_store:
                yield redis_store


async def upgrade(
    url: str, *, clock: Clock | None = None, options: StoreOptions | None = None
) -> SchemaStatus:
    """Apply the missing schema migrations (``agenthost db upgrade``); safe to run again."""
    clock = clock or SystemClock()
    options = options or StoreOptions()
    match backend_of(url):
        case "memory":
            return SchemaStatus("memory", 0, ())
        case "sqlite":
            from agenthost.stores.sqlite import upgrade_sqlite

            return await upgrade_sqlite(sqlite_path(url), clock=clock, options=options)
        case "postgres":
            _require("asyncpg", "postgres")
            from agenthost.stores.postgres import upgrade_postgres

            return await upgrade_postgres(url, clock=clock, options=options)
        case "redis":
            _require("redis", "redis")
            from agenthost.stores.redis import upgrade_redis

            return await upgrade_redis(url, clock=clock, options=options)


def _require(module: str, extra: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigurationError(
            f"This database URL needs the {module!r} package: pip install 'agenthost[{extra}]'"
        )
