"""The Redis connection: URL and prefix, errors, the persistence check, migrations.

The client never retries a command by itself: a write whose reply was lost may
have landed, and sending it again could append a turn twice. A failure becomes
``StoreUnavailableError`` (the API answers 503), and the next command reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from agenthost.clock import Clock
from agenthost.errors import ConfigurationError, StoreUnavailableError
from agenthost.stores import ids
from agenthost.stores.base import StoreOptions
from agenthost.stores.encoding import to_micros
from agenthost.stores.migrations import SchemaStatus, pending, status_after
from agenthost.stores.migrations.redis import REDIS_MIGRATIONS
from agenthost.stores.redis_layout import Layout, integer
from agenthost.stores.url import describe_url

_log = logging.getLogger("agenthost.stores.redis")
_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError, ReadOnlyError, OutOfMemoryError)


def split_url(url: str) -> tuple[str, Layout]:
    """The URL to give redis-py, and the key layout named by its ``prefix`` parameter."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((value for key, value in query if key == "prefix"), "agenthost")
    if _PREFIX.fullmatch(prefix) is None:
        raise ConfigurationError("Redis key prefix: use 1 to 64 of A-Z a-z 0-9 _ . : -")
    rest = urlencode([(key, value) for key, value in query if key != "prefix"])
    return urlunsplit(parts._replace(query=rest)), Layout(prefix)


def describe(url: str) -> str:
    return describe_url(split_url(url)[0])


def connect(url: str, *, options: StoreOptions) -> aioredis.Redis:
    """A client whose pool makes callers wait (up to the timeout) rather than fail when busy."""
    client_url, _ = split_url(url)
    pool = aioredis.BlockingConnectionPool.from_url(
        client_url,
        max_connections=options.pool_size,
        timeout=options.timeout,
        decode_responses=True,
        socket_timeout=options.timeout,
        socket_connect_timeout=options.timeout,
        retry=Retry(NoBackoff(), 0),
    )
    return aioredis.Redis.from_pool(pool)


@contextmanager
def translated(where: str) -> Iterator[None]:
    try:
        yield
    except _UNAVAILABLE as error:
        _log.warning("Redis at %s: %s: %s", where, type(error).__name__, error)
        raise StoreUnavailableError(
            f"The Redis server at {where} is unavailable; try again shortly"
        ) from None


async def warn_if_not_persistent(client: aioredis.Redis, where: str) -> bool:
    """Log a warning when Redis would lose sessions on restart; ``True`` if it would."""
    try:
        info = await client.info("persistence")
    except ResponseError:  # INFO disabled (some managed services): nothing to check
        return False
    if str(info.get("aof_enabled", "0")) == "1":
        return False
    _log.warning(
        "Redis at %s has no append-only file (appendonly no): sessions written since its last "
        "snapshot are LOST if it restarts or crashes. Set `appendonly yes` (and "
        "`appendfsync everysec`) to keep conversations durable.",
        where,
    )
    return True


async def migrate(
    client: aioredis.Redis, layout: Layout, *, clock: Clock, options: StoreOptions
) -> SchemaStatus:
    """Record the layout's version; one process at a time, under a lock key."""
    lock, token = f"{layout.schema}:lock", ids.new_id()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(options.timeout, 1.0) * 6
    while not await client.set(lock, token, nx=True, px=30_000):
        if loop.time() > deadline:
            raise StoreUnavailableError("Another process holds the Redis migration lock")
        await asyncio.sleep(0.05)
    try:
        applied = [integer(version) for version in await client.hkeys(layout.schema)]
        todo = pending(applied, REDIS_MIGRATIONS, backend="Redis", migrate=options.migrate)
        for migration in todo:
            await client.hset(layout.schema, str(migration.version), str(to_micros(clock.now())))
        return status_after("redis", applied, todo)
    finally:
        if await client.get(lock) == token:
            await client.delete(lock)
