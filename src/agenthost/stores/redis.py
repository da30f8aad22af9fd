"""``RedisSessionStore``: the session store on Redis, as a store of record, not a cache.

Each session's history is a list, so appending is RPUSH and a window is one
LRANGE from the tail: O(window), whatever the length of the history. Every write
that touches more than one key is a Lua script (``redis_scripts``), so it is
atomic. Nothing expires unless ``StoreOptions.redis_ttl`` says so. At startup
the store warns when the server would lose data on restart (no AOF). The key
layout is in ``redis_layout``; leases and turns in ``redis_turns``; API keys and
idempotency keys in ``redis_keys``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from redis.typing import EncodableT, FieldT

from agenthost.clock import Clock
from agenthost.errors import SessionNotFoundError
from agenthost.stores import ids
from agenthost.stores import redis_client as client_
from agenthost.stores.base import (
    AnyOwner,
    MessageId,
    Owner,
    OwnerFilter,
    SessionId,
    SessionPage,
    SessionRecord,
    StoredMessage,
    StoreOptions,
)
from agenthost.stores.encoding import check_metadata, encode_metadata, from_micros, to_micros
from agenthost.stores.migrations import SchemaStatus
from agenthost.stores.redis_client import translated
from agenthost.stores.redis_layout import (
    SESSION_FIELDS,
    integer,
    member,
    member_id,
    message_from_data,
    message_from_doc,
    session_from_hash,
    text,
    text_hash,
)
from agenthost.stores.redis_turns import RedisTurns
from agenthost.stores.rules import check_window, read_backwards, unknown_message


@asynccontextmanager
async def open_redis_store(
    url: str, *, clock: Clock, options: StoreOptions
) -> AsyncIterator[RedisSessionStore]:
    _, layout = client_.split_url(url)
    where = client_.describe(url)
    client = client_.connect(url, options=options)
    try:
        with translated(where):
            await client.ping()
            await client_.warn_if_not_persistent(client, where)
            await client_.migrate(client, layout, clock=clock, options=options)
        yield RedisSessionStore(client, layout, where=where, clock=clock, options=options)
    finally:
        await client.aclose()


async def upgrade_redis(url: str, *, clock: Clock, options: StoreOptions) -> SchemaStatus:
    _, layout = client_.split_url(url)
    where = client_.describe(url)
    client = client_.connect(url, options=options)
    try:
        with translated(where):
            return await client_.migrate(
                client, layout, clock=clock, options=StoreOptions(migrate=True)
            )
    finally:
        await client.aclose()


class RedisSessionStore(RedisTurns):
    async def ping(self) -> None:
        with translated(self._where):
            await self._client.ping()

    # -- sessions ----------------------------------------------------------------

    async def create_session(
        self,
        *,
        owner: Owner,
        agent: str,
        title: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> SessionRecord:
        now = self._clock.now()
        record = SessionRecord(
            ids.new_session_id(),
            ids.check_owner(owner),
            agent,
            title,
            now,
            now,
            metadata=check_metadata(metadata),
        )
        fields: dict[FieldT, EncodableT] = {
            "owner": record.owner or "",
            "agent": agent,
            "title": title,
            "created_at": to_micros(now),
            "updated_at": to_micros(now),
            "message_count": 0,
            "total_tokens": 0,
            "metadata": encode_metadata(record.metadata),
            "running": "",
        }
        item = member(to_micros(now), record.id)
        with translated(self._where):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hset(self._layout.session(record.id), mapping=fields)
                if self._ttl_ms:
                    pipe.pexpire(self._layout.session(record.id), self._ttl_ms)
                pipe.zadd(self._layout.owner(record.owner), {item: 0})
                pipe.zadd(self._layout.sessions, {item: 0})
                await pipe.execute()
        return record

    async def get_session(
        self, session_id: SessionId, *, owner: OwnerFilter = AnyOwner.ANY
    ) -> SessionRecord:
        sid, owner = ids.parse_session_id(session_id), ids.check_owner_filter(owner)
        with translated(self._where):
            fields = text_hash(await self._client.hgetall(self._layout.session(sid)))
        if not fields:
            raise SessionNotFoundError()
        record = session_from_hash(sid, fields)
        if not ids.owner_matches(owner, record.owner):
            raise SessionNotFoundError()
        return record

    async def delete_session(
        self, session_id: SessionId, *, owner: OwnerFilter = AnyOwner.ANY
    ) -> None:
        sid, owner = ids.parse_session_id(session_id), ids.check_owner_filter(owner)
        match owner:
            case AnyOwner():
                mode, owner_id = "any", ""
            case None:
                mode, owner_id = "none", ""
            case _:
                mode, owner_id = "owner", owner
        if await self._script("DELETE_SESSION", [], sid, mode, owner_id) == "missing":
            raise SessionNotFoundError()

    async def list_sessions(
        self, *, owner: OwnerFilter, limit: int = 20, cursor: str | None = None
    ) -> SessionPage:
        owner = ids.check_owner_filter(owner)
        ids.check_limit(limit)
        key = self._layout.sessions if isinstance(owner, AnyOwner) else self._layout.owner(owner)
        high = "+"
        if cursor is not None:
            created_at, last_id = ids.decode_cursor(cursor)
            high = "(" + member(to_micros(created_at), last_id)
        reply = text(await self._script("LIST_SESSIONS", [], key, high, limit + 1))
        rows: list[list[object]] = json.loads(reply) if reply != "{}" else []  # {}: Lua's []
        page = rows[:limit]
        expired = [text(row[0]) for row in page if row[1] is False]
        if expired:  # expired (redis_ttl): forget them in the index too
            with translated(self._where):
                await self._client.zrem(key, *expired)
        sessions = tuple(
            session_from_hash(
                SessionId(member_id(row[0])),
                dict(zip(SESSION_FIELDS, map(text, row[1:]), strict=True)),
            )
            for row in page
            if row[1] is not False
        )
        if len(rows) <= limit:
            return SessionPage(sessions, None)
        micros, last = text(page[-1][0]).split(":", 1)
        return SessionPage(sessions, ids.encode_cursor(from_micros(int(micros)), SessionId(last)))

    async def count_sessions(self) -> int:
        with translated(self._where):
            return int(await self._client.zcard(self._layout.sessions))

    # -- history -------------------------------------------------------------------

    async def read_window(
        self, session_id: SessionId, *, budget_tokens: int, max_messages: int
    ) -> list[StoredMessage]:
        sid = ids.parse_session_id(session_id)
        check_window(budget_tokens, max_messages)
        messages = self._layout.messages(sid)

        async def fetch(before: int | None, limit: int) -> list[tuple[int, dict[str, Any]]]:
            with translated(self._where):
                if before is None:
                    async with self._client.pipeline(transaction=True) as pipe:
                        pipe.exists(self._layout.session(sid))
                        pipe.llen(messages)
                        pipe.lrange(messages, -limit, -1)
                        exists, length, docs = await pipe.execute()
                    if not exists:
                        raise SessionNotFoundError()
                    before = integer(length) + 1
                else:
                    end = before - 2  # list index of the message just before `before`
                    docs = (
                        await self._client.lrange(messages, max(0, end - limit + 1), end)
                        if end >= 0
                        else []
                    )
            return [(before - 1 - i, json.loads(text(doc))) for i, doc in enumerate(reversed(docs))]

        rows = await read_backwards(
            fetch,
            lambda row: int(row[1]["t"]),
            lambda row: row[0],
            budget_tokens=budget_tokens,
            max_messages=max_messages,
        )
        return [message_from_data(sid, seq, data) for seq, data in reversed(rows)]

    async def read_page(
        self, session_id: SessionId, *, limit: int = 50, before: MessageId | None = None
    ) -> list[StoredMessage]:
        sid = ids.parse_session_id(session_id)
        ids.check_limit(limit)
        before_id = None if before is None else ids.parse_message_id(before)
        with translated(self._where):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.exists(self._layout.session(sid))
                pipe.llen(self._layout.messages(sid))
                if before_id is not None:
                    pipe.hget(self._layout.message_seq(sid), before_id)
                exists, length, *seq = await pipe.execute()
            if not exists:
                raise SessionNotFoundError()
            if before_id is not None and seq[0] is None:
                raise unknown_message()
            end = integer(seq[0]) - 1 if before_id is not None else int(length)
            start = max(0, end - limit)
            docs = (
                await self._client.lrange(self._layout.messages(sid), start, end - 1) if end else []
            )
        return [message_from_doc(sid, start + 1 + i, text(doc)) for i, doc in enumerate(docs)]
