"""``SQLSessionStore``: the session store in SQL, for SQLite and PostgreSQL.

The queries are written once and run on either database through an
``SQLDatabase`` adapter (``sqlite.py``, ``postgres.py``). This module holds
sessions and reading history; ``sql_turns`` holds leases, turns and runs, and
``sql_keys`` API keys and idempotency keys. A window read is one backwards walk
of the (session_id, seq) primary key, whatever the length of the history.
"""

from __future__ import annotations

from collections.abc import Mapping

from agenthost.errors import SessionNotFoundError
from agenthost.stores import ids
from agenthost.stores.base import (
    AnyOwner,
    MessageId,
    Owner,
    OwnerFilter,
    SessionId,
    SessionPage,
    SessionRecord,
    StoredMessage,
)
from agenthost.stores.encoding import check_metadata, encode_metadata
from agenthost.stores.rules import check_window, read_backwards, unknown_message
from agenthost.stores.sql_database import Row
from agenthost.stores.sql_rows import (
    MESSAGE,
    NO_SEQ,
    SESSION,
    get_session,
    message_row,
    owner_clause,
    session_row,
)
from agenthost.stores.sql_turns import SQLTurns


class SQLSessionStore(SQLTurns):
    async def ping(self) -> None:
        async with self._db.read() as c:
            await c.fetchone("SELECT 1")

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
        async with self._db.write() as c:
            await c.execute(
                f"INSERT INTO sessions ({SESSION}) VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?)",
                record.id,
                record.owner,
                agent,
                title,
                self._db.time(now),
                self._db.time(now),
                encode_metadata(record.metadata),
            )
        return record

    async def get_session(
        self, session_id: SessionId, *, owner: OwnerFilter = AnyOwner.ANY
    ) -> SessionRecord:
        sid, owner = ids.parse_session_id(session_id), ids.check_owner_filter(owner)
        async with self._db.read() as c:
            return await get_session(c, sid, owner)

    async def delete_session(
        self, session_id: SessionId, *, owner: OwnerFilter = AnyOwner.ANY
    ) -> None:
        sid, owner = ids.parse_session_id(session_id), ids.check_owner_filter(owner)
        where, params = owner_clause(owner)
        async with self._db.write() as c:
            deleted = await c.execute(
                f"DELETE FROM sessions WHERE id = ?{''.join(' AND ' + w for w in where)}",
                sid,
                *params,
            )
        if not deleted:
            raise SessionNotFoundError()

    async def list_sessions(
        self, *, owner: OwnerFilter, limit: int = 20, cursor: str | None = None
    ) -> SessionPage:
        where, params = owner_clause(ids.check_owner_filter(owner))
        ids.check_limit(limit)
        if cursor is not None:
            created_at, last_id = ids.decode_cursor(cursor)
            where.append("(created_at, id) < (?, ?)")
            params += [self._db.time(created_at), last_id]
        sql = (
            f"SELECT {SESSION} FROM sessions {'WHERE ' + ' AND '.join(where) if where else ''}"
            " ORDER BY created_at DESC, id DESC LIMIT ?"
        )
        async with self._db.read() as c:
            rows = await c.fetchall(sql, *params, limit + 1)
        sessions = tuple(session_row(row) for row in rows[:limit])
        if len(rows) <= limit:
            return SessionPage(sessions, None)
        return SessionPage(sessions, ids.encode_cursor(sessions[-1].created_at, sessions[-1].id))

    async def count_sessions(self) -> int:
        async with self._db.read() as c:
            row = await c.fetchone("SELECT count(*) FROM sessions")
        return int(row[0]) if row else 0

    # -- history -------------------------------------------------------------------

    async def read_window(
        self, session_id: SessionId, *, budget_tokens: int, max_messages: int
    ) -> list[StoredMessage]:
        sid = ids.parse_session_id(session_id)
        check_window(budget_tokens, max_messages)
        async with self._db.read() as c:

            async def fetch(before: int | None, limit: int) -> list[Row]:
                return await c.fetchall(
                    f"SELECT {MESSAGE} FROM messages WHERE session_id = ? AND seq < ?"
                    " ORDER BY seq DESC LIMIT ?",
                    sid,
                    NO_SEQ if before is None else before,
                    limit,
                )

            rows = await read_backwards(
                fetch,
                lambda row: int(row[4]),
                lambda row: int(row[2]),
                budget_tokens=budget_tokens,
                max_messages=max_messages,
            )
            if not rows:
                await get_session(c, sid, AnyOwner.ANY)
        return [message_row(row) for row in reversed(rows)]

    async def read_page(
        self, session_id: SessionId, *, limit: int = 50, before: MessageId | None = None
    ) -> list[StoredMessage]:
        sid = ids.parse_session_id(session_id)
        ids.check_limit(limit)
        before_id = None if before is None else ids.parse_message_id(before)
        async with self._db.read() as c:
            await get_session(c, sid, AnyOwner.ANY)
            end = NO_SEQ
            if before_id is not None:
                found = await c.fetchone(
                    "SELECT seq FROM messages WHERE id = ? AND session_id = ?", before_id, sid
                )
                if found is None:
                    raise unknown_message()
                end = found[0]
            rows = await c.fetchall(
                f"SELECT {MESSAGE} FROM messages WHERE session_id = ? AND seq < ?"
                " ORDER BY seq DESC LIMIT ?",
                sid,
                end,
                limit,
            )
        return [message_row(row) for row in reversed(rows)]
