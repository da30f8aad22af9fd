"""Leases, turns and runs in Redis: the half of ``RedisSessionStore`` that runs replies.

Each operation is one Lua script (``redis_scripts``): checking the lease,
opening the run and appending the user's message happen as one step, and so do
appending a turn's messages, finishing its run and updating the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from agenthost.errors import RunNotFoundError, SessionBusyError, SessionNotFoundError
from agenthost.messages import Usage
from agenthost.stores import ids
from agenthost.stores.base import (
    CompletedTurn,
    FinalRunStatus,
    Lease,
    MessageId,
    NewMessage,
    RunId,
    RunRecord,
    SessionId,
    StartedTurn,
    StoredMessage,
    TakeLease,
)
from agenthost.stores.encoding import to_micros
from agenthost.stores.redis_client import translated
from agenthost.stores.redis_keys import RedisKeys
from agenthost.stores.redis_layout import (
    integer,
    message_doc,
    run_from_hash,
    session_from_hash,
    text,
    text_hash,
)
from agenthost.stores.rules import (
    check_final_status,
    check_new_messages,
    check_ttl,
    check_turn,
    lease_lost,
    reply_running,
    run_finished,
)


class RedisTurns(RedisKeys):
    async def acquire_lease(self, session_id: SessionId, holder: str, ttl: timedelta) -> Lease:
        sid = ids.parse_session_id(session_id)
        check_ttl(ttl)
        now = self._clock.now()
        lease = Lease(sid, holder, ids.new_id(), now + ttl)
        reply = await self._call(
            "ACQUIRE_LEASE", sid, holder, lease.token, to_micros(now),
            to_micros(lease.expires_at), self._ttl_ms,
        )  # fmt: skip
        if reply == "missing":
            raise SessionNotFoundError()
        if reply == "busy":
            raise SessionBusyError()
        return lease

    async def renew_lease(self, lease: Lease, ttl: timedelta) -> Lease:
        sid = ids.parse_session_id(lease.session_id)
        check_ttl(ttl)
        now = self._clock.now()
        renewed = Lease(sid, lease.holder, lease.token, now + ttl)
        reply = await self._call(
            "RENEW_LEASE", sid, lease.token, to_micros(now), to_micros(renewed.expires_at),
            self._ttl_ms,
        )  # fmt: skip
        if reply == "missing":
            raise SessionNotFoundError()
        if reply == "lost":
            raise lease_lost()
        return renewed

    async def release_lease(self, lease: Lease) -> None:
        await self._call("RELEASE_LEASE", ids.parse_session_id(lease.session_id), lease.token)

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
        mid = MessageId(ids.new_id())
        doc = message_doc(mid, new, rid, to_micros(now))
        if isinstance(lease, TakeLease):
            reply = await self._call(
                "TAKE_AND_BEGIN_TURN", sid, held.holder, held.token, to_micros(now),
                to_micros(held.expires_at), rid, model, mid, doc, self._ttl_ms,
            )  # fmt: skip
        else:
            reply = await self._call(
                "BEGIN_TURN", sid, held.token, to_micros(now), rid, model, mid, doc, self._ttl_ms
            )
        match reply[0]:
            case "missing":
                raise SessionNotFoundError()
            case "busy":
                raise SessionBusyError()
            case "lost":
                raise lease_lost()
            case "running":
                raise reply_running()
            case "duplicate":
                raise ValueError("run id already used")
        run = RunRecord(rid, sid, "running", model, Usage(), None, now, None)
        stored = StoredMessage(mid, sid, integer(reply[1]), new.message, new.tokens, rid, now)
        return StartedTurn(run, stored, held)

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
        mids = [MessageId(ids.new_id()) for _ in new_messages]
        docs = [
            value
            for mid, new in zip(mids, new_messages, strict=True)
            for value in (mid, message_doc(mid, new, rid, to_micros(now)))
        ]
        reply = await self._call(
            "COMPLETE_TURN", rid, to_micros(now), status, usage.prompt_tokens,
            usage.completion_tokens, int(error is not None), error or "", usage.total_tokens,
            self._ttl_ms, len(new_messages), release.token if release else "", *docs,
        )  # fmt: skip
        match reply[0]:
            case "missing":
                raise RunNotFoundError()
            case "finished":
                raise run_finished(text(reply[1]))
        first, session_fields, run_fields = (
            integer(reply[1]),
            text_hash(reply[2]),
            text_hash(reply[3]),
        )
        session = session_from_hash(SessionId(run_fields["session_id"]), session_fields)
        stored = tuple(
            StoredMessage(mid, session.id, first + i, new.message, new.tokens, rid, now)
            for i, (mid, new) in enumerate(zip(mids, new_messages, strict=True))
        )
        return CompletedTurn(run_from_hash(rid, run_fields), stored, session)

    async def get_run(self, run_id: RunId) -> RunRecord:
        rid = ids.parse_run_id(run_id)
        with translated(self._where):
            fields = text_hash(await self._client.hgetall(self._layout.run(rid)))
        if not fields:
            raise RunNotFoundError()
        return run_from_hash(rid, fields)

    async def mark_interrupted(self, holder: str) -> int:
        return integer(await self._call("MARK_INTERRUPTED", holder, to_micros(self._clock.now())))

    async def recover_interrupted(self) -> int:
        return integer(await self._call("RECOVER_INTERRUPTED", to_micros(self._clock.now())))

    async def _call(self, name: str, *args: str | int) -> list[object] | str:
        """A script over the session's keys; its reply, a status word or a list."""
        reply = await self._script(name, [], *args)
        if isinstance(reply, int):
            return str(reply)
        if isinstance(reply, str | list):
            return reply
        raise TypeError(f"unexpected reply from Redis: {reply!r}")
