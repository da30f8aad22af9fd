"""Bulk-loading sessions for the store benchmark: 100,000 rows in seconds, not minutes.

Going through ``create_session`` one call at a time would measure the seeding,
not the listing; so this writes sessions straight into each backend, in exactly
the form the store writes them (same tables, same Redis keys). Benchmark only:
it knows the schema, which the application never needs to.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

from agenthost.stores import ApiKeyId, Store
from agenthost.stores.encoding import to_micros
from agenthost.stores.redis_client import split_url
from agenthost.stores.redis_layout import member
from agenthost.stores.url import sqlite_path

BATCH = 5_000


def owners(count: int) -> list[ApiKeyId]:
    return [ApiKeyId(str(uuid.UUID(int=index + 1, version=4))) for index in range(count)]


def _rows(
    count: int, owner_ids: list[ApiKeyId], start: datetime
) -> list[tuple[str, str, datetime]]:
    return [
        (
            str(uuid.uuid4()),
            owner_ids[index % len(owner_ids)],
            start + timedelta(milliseconds=index),
        )
        for index in range(count)
    ]


async def seed_sessions(
    store: Store, url: str, count: int, owner_ids: list[ApiKeyId], start: datetime
) -> None:
    """Add ``count`` sessions spread over ``owner_ids``, created one millisecond apart."""
    rows = _rows(count, owner_ids, start)
    match store.backend:
        case "memory":
            await _seed_memory(store, rows)
        case "sqlite":
            _seed_sqlite(url, rows)
        case "postgres":
            await _seed_postgres(url, rows)
        case "redis":
            await _seed_redis(url, rows)
        case other:
            raise ValueError(other)


async def _seed_memory(store: Store, rows: list[tuple[str, str, datetime]]) -> None:
    for _, owner, _ in rows:  # the memory store has no bulk path; it is fast enough
        await store.create_session(owner=ApiKeyId(owner), agent="bench")


def _seed_sqlite(url: str, rows: list[tuple[str, str, datetime]]) -> None:
    connection = sqlite3.connect(sqlite_path(url), timeout=30)
    try:
        with connection:
            connection.executemany(
                "INSERT INTO sessions (id, owner, agent, title, created_at, updated_at)"
                " VALUES (?, ?, 'bench', '', ?, ?)",
                [(sid, owner, to_micros(at), to_micros(at)) for sid, owner, at in rows],
            )
    finally:
        connection.close()


async def _seed_postgres(url: str, rows: list[tuple[str, str, datetime]]) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.copy_records_to_table(
            "sessions",
            records=[
                (uuid.UUID(sid), uuid.UUID(owner), "bench", "", at, at) for sid, owner, at in rows
            ],
            columns=["id", "owner", "agent", "title", "created_at", "updated_at"],
        )
        await connection.execute("ANALYZE sessions")
    finally:
        await connection.close()


async def _seed_redis(url: str, rows: list[tuple[str, str, datetime]]) -> None:
    import redis.asyncio as aioredis

    client_url, layout = split_url(url)
    client = aioredis.Redis.from_url(client_url, decode_responses=True)
    try:
        for first in range(0, len(rows), BATCH):
            async with client.pipeline(transaction=False) as pipe:
                for sid, owner, at in rows[first : first + BATCH]:
                    micros = to_micros(at)
                    pipe.hset(
                        f"{layout.prefix}:session:{sid}",
                        mapping={"owner": owner, "agent": "bench", "title": "",
                                 "created_at": micros, "updated_at": micros, "message_count": 0,
                                 "total_tokens": 0, "metadata": "{}", "running": ""},
                    )  # fmt: skip
                    pipe.zadd(f"{layout.prefix}:owner:{owner}", {member(micros, sid): 0})
                    pipe.zadd(layout.sessions, {member(micros, sid): 0})
                await pipe.execute()
    finally:
        await client.aclose()


def seed_start() -> datetime:
    """Seeded sessions are older than any the benchmark creates through the store."""
    return datetime.now(UTC) - timedelta(days=30)
