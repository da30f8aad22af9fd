"""Leases, turns and runs in SQL: the half of ``SQLSessionStore`` that runs replies.

Concurrency rests on row locks that SQLite and PostgreSQL both take on UPDATE.
Every write that touches more than one row of a session locks the session's row
first (appending bumps ``message_count``, which also allocates the new ``seq``
numbers), so writers of one session queue, in one lock order, without deadlocks.
Checking a lease is an UPDATE of the lease row, so a takeover waits for a turn
being begun under the old lease, then sees its run and interrupts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from agenthost.errors import RunNotFoundError, SessionBusyError, SessionNotFoundError
from agenthost.messages import Usage
from agenthost.stores import ids
from agenthost.stores.base import (
    INTERRUPTED_ERROR,
    AnyOwner,
    CompletedTurn,
    FinalRunStatus,
    Lease,
    MessageId,
    NewMessage,
    RunId,
    RunRecord,
    SessionId,
    SessionRecord,
    StartedTurn,
    StoredMessage,
    TakeLease,
)
from agenthost.stores.encoding import encode_message
from agenthost.stores.rules import (
    check_final_status,
    check_new_messages,
    check_ttl,
    check_turn,
    lease_lost,
    reply_running,
    run_finished,
)
from agenthost.stores.sql_database import DuplicateKeyError, SQLConnection
from agenthost.stores.sql_keys import SQLKeys
from agenthost.stores.sql_rows import (
    MESSAGE,
    RUN,
    SESSION,
    get_session,
    lock_session,
    run_row,
    session_row,
)

_GIVE_BACK = "DELETE FROM session_leases WHERE session_id = ? AND token = ?"
"""A lease given back: only while it is still the holder's (a lost one is left alone)."""


class SQLTurns(SQLKeys):
    # -- leases --------------------------------------------------------------------

    async def acquire_lease(self, session_id: SessionId, holder: str, ttl: timedelta) -> Lease:
        sid = ids.parse_session_id(session_id)
        check_ttl(ttl)
        now = self._clock.now()
        lease = Lease(sid, holder, ids.new_id(), now + ttl)
        async with self._db.write() as c:
            await self._take(c, lease, now)
        return lease

    async def _take(self, c: SQLConnection, lease: Lease, now: datetime) -> None:
        """Take the lease unless another one is live; interrupt what an expired one left."""
        await lock_session(c, lease.session_id)
        taken = await c.fetchone(
            "INSERT INTO session_leases (session_id, holder, token, expires_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET"
            " holder = excluded.holder, token = excluded.token,"
            " expires_at = excluded.expires_at WHERE session_leases.expires_at <= ?"
            " RETURNING token",
            lease.session_id,
            lease.holder,
            lease.token,
            self._db.time(lease.expires_at),
            self._db.time(now),
        )
        if taken is None:
            raise SessionBusyError()
        await self._interrupt(c, now, "session_id = ?", lease.session_id)

    async def renew_lease(self, lease: Lease, ttl: timedelta) -> Lease:
        sid = ids.parse_session_id(lease.session_id)
        check_ttl(ttl)
        now = self._clock.now()
        renewed = Lease(sid, lease.holder, lease.token, now + ttl)
        async with self._db.write() as c:
            await get_session(c, sid, AnyOwner.ANY)
            if not await c.execute(
                "UPDATE session_leases SET expires_at = ?"
                " WHERE session_id = ? AND token = ? AND expires_at > ?",
                self._db.time(renewed.expires_at),
                sid,
                lease.token,
                self._db.time(now),
            ):
                raise lease_lost()
        return renewed

    async def release_lease(self, lease: Lease) -> None:
        sid = ids.parse_session_id(lease.session_id)
        async with self._db.write() as c:
            await c.execute(_GIVE_BACK, sid, lease.token)

    # -- turns and runs ------------------------------------------------------------

    async def begin_turn(
        self,
        session_id: SessionId,
        user_message: NewMessage,
        *,
        lease: Lease | TakeLease,
        model: str,
        run_id: RunId | None = None,
    ) -> StartedTurn:
        now = self._clock.now()
        sid, rid, new, held = check_turn(session_id, user_message, lease, run_id, now)
        run = RunRecord(rid, sid, "running", model, Usage(), None, now, None)
        async with self._db.write() as c:  # a failure after the lease is taken undoes it
            if isinstance(lease, TakeLease):  # taking it also ends what an expired one left
                await self._take(c, held, now)
                session = await self._bump(c, sid, (new,), Usage(), now)
            else:
                session = await self._bump(c, sid, (new,), Usage(), now)
                await self._check_held(c, held, now)
            try:
                await c.execute(
                    "INSERT INTO runs (id, session_id, status, model, started_at)"
                    " VALUES (?, ?, 'running', ?, ?)",
                    rid,
                    sid,
                    model,
                    self._db.time(now),
                )
            except DuplicateKeyError:
                raise ValueError("run id already used") from None
            (stored,) = await self._insert(c, session, (new,), rid, now)
        return StartedTurn(run, stored, held)

    async def _check_held(self, c: SQLConnection, lease: Lease, now: datetime) -> None:
        """The lease is live and no other reply of its session is running."""
        # An UPDATE, not a SELECT: it locks the lease row until we commit.
        if not await c.execute(
            "UPDATE session_leases SET token = token"
            " WHERE session_id = ? AND token = ? AND expires_at > ?",
            lease.session_id,
            lease.token,
            self._db.time(now),
        ):
            raise lease_lost()
        if await c.fetchone(
            "SELECT 1 FROM runs WHERE session_id = ? AND status = 'running'", lease.session_id
        ):
            raise reply_running()

    async def complete_turn(
        self,
        run_id: RunId,
        messages: Sequence[NewMessage],
        *,
        usage: Usage,
        status: FinalRunStatus = "completed",
        error: str | None = None,
        release: Lease | None = None,
    ) -> CompletedTurn:
        rid = ids.parse_run_id(run_id)
        check_final_status(status)
        new_messages = check_new_messages(messages)
        now = self._clock.now()
        async with self._db.write() as c:
            found = await c.fetchone("SELECT session_id FROM runs WHERE id = ?", rid)
            if found is None:
                raise RunNotFoundError()
            session = await self._bump(c, SessionId(str(found[0])), new_messages, usage, now)
            row = await c.fetchone(
                "UPDATE runs SET status = ?, prompt_tokens = ?, completion_tokens = ?,"
                f" error = ?, finished_at = ? WHERE id = ? AND status = 'running' RETURNING {RUN}",
                status,
                usage.prompt_tokens,
                usage.completion_tokens,
                error,
                self._db.time(now),
                rid,
            )
            if row is None:
                found = await c.fetchone("SELECT status FROM runs WHERE id = ?", rid)
                raise run_finished(str(found[0]) if found else "gone")
            stored = await self._insert(c, session, new_messages, rid, now)
            if release is not None:  # the run's session: another session's lease stays
                await c.execute(_GIVE_BACK, session.id, release.token)
        return CompletedTurn(run_row(row), stored, session)

    async def get_run(self, run_id: RunId) -> RunRecord:
        rid = ids.parse_run_id(run_id)
        async with self._db.read() as c:
            row = await c.fetchone(f"SELECT {RUN} FROM runs WHERE id = ?", rid)
        if row is None:
            raise RunNotFoundError()
        return run_row(row)

    async def mark_interrupted(self, holder: str) -> int:
        now = self._clock.now()
        async with self._db.write() as c:
            freed = await c.fetchall(
                "DELETE FROM session_leases WHERE holder = ? RETURNING session_id", holder
            )
            count = 0
            for (session_id,) in freed:
                count += await self._interrupt(c, now, "session_id = ?", session_id)
        return count

    async def recover_interrupted(self) -> int:
        now = self._clock.now()
        orphaned = "session_id NOT IN (SELECT session_id FROM session_leases WHERE expires_at > ?)"
        async with self._db.write() as c:
            return await self._interrupt(c, now, orphaned, self._db.time(now))

    # -- internals -----------------------------------------------------------------

    async def _bump(
        self,
        c: SQLConnection,
        session_id: SessionId,
        messages: Sequence[NewMessage],
        usage: Usage,
        now: datetime,
    ) -> SessionRecord:
        """Count the messages in (allocating their seqs); locks the session row first."""
        row = await c.fetchone(
            "UPDATE sessions SET message_count = message_count + ?,"
            f" total_tokens = total_tokens + ?, updated_at = ? WHERE id = ? RETURNING {SESSION}",
            len(messages),
            usage.total_tokens,
            self._db.time(now),
            session_id,
        )
        if row is None:
            raise SessionNotFoundError()
        return session_row(row)

    async def _insert(
        self,
        c: SQLConnection,
        session: SessionRecord,
        messages: Sequence[NewMessage],
        run_id: RunId,
        now: datetime,
    ) -> tuple[StoredMessage, ...]:
        """Store the messages counted in by ``_bump``, which returned ``session``."""
        first = session.message_count - len(messages) + 1
        stored = tuple(
            StoredMessage(
                MessageId(ids.new_id()),
                session.id,
                first + offset,
                new.message,
                new.tokens,
                run_id,
                now,
            )
            for offset, new in enumerate(messages)
        )
        if stored:
            await c.executemany(
                f"INSERT INTO messages ({MESSAGE}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        m.id,
                        m.session_id,
                        m.seq,
                        encode_message(m.message),
                        m.tokens,
                        m.run_id,
                        self._db.time(now),
                    )
                    for m in stored
                ],
            )
        return stored

    async def _interrupt(self, c: SQLConnection, now: datetime, where: str, *params: object) -> int:
        return await c.execute(
            "UPDATE runs SET status = 'interrupted', error = ?, finished_at = ?"
            f" WHERE status = 'running' AND {where}",
            INTERRUPTED_ERROR,
            self._db.time(now),
            *params,
        )
