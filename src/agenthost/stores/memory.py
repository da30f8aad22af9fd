"""``MemorySessionStore``: the whole ``Store`` in dicts, for tests and throwaway demos.

It keeps every rule of the durable backends (the contract suite runs against it
too), so code tested against it behaves the same on SQLite, PostgreSQL or Redis.
API keys and idempotency keys live in ``memory_keys``.
It is safe within one event loop because no method awaits between its reads and
its writes; it shares nothing between processes and forgets everything on exit.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from agenthost.clock import Clock, SystemClock
from agenthost.errors import (
    RunNotFoundError,
    SessionBusyError,
    SessionNotFoundError,
)
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
    Owner,
    OwnerFilter,
    RunId,
    RunRecord,
    SessionId,
    SessionPage,
    SessionRecord,
    StartedTurn,
    StoredMessage,
    StoreOptions,
    TakeLease,
)
from agenthost.stores.encoding import check_metadata, to_micros
from agenthost.stores.memory_keys import MemoryKeys
from agenthost.stores.rules import (
    check_final_status,
    check_new_messages,
    check_ttl,
    check_turn,
    check_window,
    lease_lost,
    reply_running,
    run_finished,
    take_window,
    unknown_message,
)

_SortKey = tuple[int, str]
_RunPredicate = Callable[[RunRecord], bool]


class MemorySessionStore(MemoryKeys):
    def __init__(self, *, clock: Clock | None = None, options: StoreOptions | None = None) -> None:
        super().__init__(clock=clock or SystemClock(), options=options or StoreOptions())
        self._sessions: dict[SessionId, SessionRecord] = {}
        self._order: dict[Owner, list[_SortKey]] = {}
        self._all: list[_SortKey] = []
        self._messages: dict[SessionId, list[StoredMessage]] = {}
        self._positions: dict[MessageId, tuple[SessionId, int]] = {}
        self._runs: dict[RunId, RunRecord] = {}
        # The running runs by session: what leases and turns check, without a scan
        # of every run the process has stored.
        self._running: dict[SessionId, set[RunId]] = {}
        self._leases: dict[SessionId, Lease] = {}

    async def ping(self) -> None:
        return None

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
            id=ids.new_session_id(),
            owner=ids.check_owner(owner),
            agent=agent,
            title=title,
            created_at=now,
            updated_at=now,
            metadata=check_metadata(metadata),
        )
        self._sessions[record.id] = record
        self._messages[record.id] = []
        key = (to_micros(now), record.id)
        bisect.insort(self._order.setdefault(record.owner, []), key)
        bisect.insort(self._all, key)
        return record

    async def get_session(
        self, session_id: SessionId, *, owner: OwnerFilter = AnyOwner.ANY
    ) -> SessionRecord:
        return self._session(ids.parse_session_id(session_id), ids.check_owner_filter(owner))

    async def delete_session(
        self, session_id: SessionId, *, owner: OwnerFilter = AnyOwner.ANY
    ) -> None:
        record = self._session(ids.parse_session_id(session_id), ids.check_owner_filter(owner))
        del self._sessions[record.id]
        for message in self._messages.pop(record.id):
            del self._positions[message.id]
        for run_id in [run.id for run in self._runs.values() if run.session_id == record.id]:
            del self._runs[run_id]
        self._running.pop(record.id, None)
        self._leases.pop(record.id, None)
        key = (to_micros(record.created_at), record.id)
        for keys in (self._order[record.owner], self._all):
            del keys[bisect.bisect_left(keys, key)]

    async def list_sessions(
        self, *, owner: OwnerFilter, limit: int = 20, cursor: str | None = None
    ) -> SessionPage:
        owner = ids.check_owner_filter(owner)
        ids.check_limit(limit)
        keys = self._all if isinstance(owner, AnyOwner) else self._order.get(owner, [])
        end = len(keys)
        if cursor is not None:
            created_at, last_id = ids.decode_cursor(cursor)
            end = bisect.bisect_left(keys, (to_micros(created_at), last_id))
        page = [
            self._sessions[SessionId(key[1])] for key in reversed(keys[max(0, end - limit) : end])
        ]
        more = end > limit
        next_cursor = ids.encode_cursor(page[-1].created_at, page[-1].id) if more else None
        return SessionPage(tuple(page), next_cursor)

    async def count_sessions(self) -> int:
        return len(self._sessions)

    # -- history -------------------------------------------------------------------

    async def read_window(
        self, session_id: SessionId, *, budget_tokens: int, max_messages: int
    ) -> list[StoredMessage]:
        check_window(budget_tokens, max_messages)
        record = self._session(ids.parse_session_id(session_id), AnyOwner.ANY)
        history = self._messages[record.id]
        return take_window(itertools.islice(reversed(history), max_messages), budget_tokens)

    async def read_page(
        self, session_id: SessionId, *, limit: int = 50, before: MessageId | None = None
    ) -> list[StoredMessage]:
        ids.check_limit(limit)
        record = self._session(ids.parse_session_id(session_id), AnyOwner.ANY)
        history = self._messages[record.id]
        end = len(history)
        if before is not None:
            where = self._positions.get(ids.parse_message_id(before))
            if where is None or where[0] != record.id:
                raise unknown_message()
            end = where[1] - 1
        return history[max(0, end - limit) : end]

    # -- leases --------------------------------------------------------------------

    async def acquire_lease(self, session_id: SessionId, holder: str, ttl: timedelta) -> Lease:
        record = self._session(ids.parse_session_id(session_id), AnyOwner.ANY)
        check_ttl(ttl)
        now = self._clock.now()
        return self._take(Lease(record.id, holder, ids.new_id(), now + ttl), now)

    def _take(self, lease: Lease, now: datetime) -> Lease:
        """The session's lease is ``lease`` now, unless another one is live; a run left
        by an expired one is interrupted."""
        current = self._leases.get(lease.session_id)
        if current is not None and current.expires_at > now:
            raise SessionBusyError()
        for run_id in list(self._running.get(lease.session_id, ())):
            self._interrupt(self._runs[run_id])
        self._leases[lease.session_id] = lease
        return lease

    async def renew_lease(self, lease: Lease, ttl: timedelta) -> Lease:
        check_ttl(ttl)
        self._live_lease(lease)
        renewed = replace(lease, expires_at=self._clock.now() + ttl)
        self._leases[lease.session_id] = renewed
        return renewed

    async def release_lease(self, lease: Lease) -> None:
        self._give_back(ids.parse_session_id(lease.session_id), lease)

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
        sid, new_run_id, user_message, held = check_turn(
            session_id, user_message, lease, run_id, now
        )
        record = self._session(sid, AnyOwner.ANY)
        if new_run_id in self._runs:
            raise ValueError("run id already used")
        if isinstance(lease, TakeLease):  # the last check: taking it is the first write
            self._take(held, now)
        else:
            self._live_lease(held)
            if self._running.get(record.id):
                raise reply_running()
        run = RunRecord(new_run_id, record.id, "running", model, Usage(), None, now, None)
        self._runs[run.id] = run
        self._running.setdefault(record.id, set()).add(run.id)
        (stored,) = self._append(record, [user_message], run.id, Usage())
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
        run = self._runs.get(ids.parse_run_id(run_id))
        check_final_status(status)
        new_messages = check_new_messages(messages)
        if run is None:
            raise RunNotFoundError()
        if run.status != "running":
            raise run_finished(run.status)
        record = self._sessions[run.session_id]
        stored = self._append(record, new_messages, run.id, usage)
        finished = replace(
            run, status=status, usage=usage, error=error, finished_at=self._clock.now()
        )
        self._runs[run.id] = finished
        self._stopped(run)
        if release is not None:
            self._give_back(record.id, release)
        return CompletedTurn(finished, tuple(stored), self._sessions[record.id])

    async def get_run(self, run_id: RunId) -> RunRecord:
        run = self._runs.get(ids.parse_run_id(run_id))
        if run is None:
            raise RunNotFoundError()
        return run

    async def mark_interrupted(self, holder: str) -> int:
        held = {lease.session_id for lease in self._leases.values() if lease.holder == holder}
        for session_id in held:
            del self._leases[session_id]
        return self._interrupt_where(lambda run: run.session_id in held)

    async def recover_interrupted(self) -> int:
        now = self._clock.now()
        live = {sid for sid, lease in self._leases.items() if lease.expires_at > now}
        return self._interrupt_where(lambda run: run.session_id not in live)

    # -- internals -----------------------------------------------------------------

    def _session(self, session_id: SessionId, owner: OwnerFilter) -> SessionRecord:
        record = self._sessions.get(session_id)
        if record is None or not ids.owner_matches(owner, record.owner):
            raise SessionNotFoundError()
        return record

    def _give_back(self, session_id: SessionId, lease: Lease) -> None:
        """Drop the session's lease if it is still ``lease`` (a lost one is left alone)."""
        current = self._leases.get(session_id)
        if current is not None and current.token == lease.token:
            del self._leases[session_id]

    def _live_lease(self, lease: Lease) -> None:
        self._session(ids.parse_session_id(lease.session_id), AnyOwner.ANY)
        current = self._leases.get(lease.session_id)
        if current is None or current.token != lease.token:
            raise lease_lost()
        if current.expires_at <= self._clock.now():
            raise lease_lost()

    def _append(
        self,
        record: SessionRecord,
        messages: Sequence[NewMessage],
        run_id: RunId,
        usage: Usage,
    ) -> list[StoredMessage]:
        now = self._clock.now()
        history = self._messages[record.id]
        stored = [
            StoredMessage(
                id=MessageId(ids.new_id()),
                session_id=record.id,
                seq=len(history) + offset,
                message=new.message,
                tokens=new.tokens,
                run_id=run_id,
                created_at=now,
            )
            for offset, new in enumerate(messages, start=1)
        ]
        history.extend(stored)
        for message in stored:
            self._positions[message.id] = (record.id, message.seq)
        # Made directly: dataclasses.replace costs more than the rest of an append.
        self._sessions[record.id] = SessionRecord(
            record.id,
            record.owner,
            record.agent,
            record.title,
            record.created_at,
            updated_at=now,
            message_count=len(history),
            total_tokens=record.total_tokens + usage.total_tokens,
            metadata=record.metadata,
        )
        return stored

    def _interrupt(self, run: RunRecord) -> None:
        self._runs[run.id] = replace(
            run, status="interrupted", error=INTERRUPTED_ERROR, finished_at=self._clock.now()
        )
        self._stopped(run)

    def _stopped(self, run: RunRecord) -> None:
        """Take a run that is no longer running out of the running index."""
        running = self._running.get(run.session_id)
        if running is not None:
            running.discard(run.id)
            if not running:
                del self._running[run.session_id]

    def _interrupt_where(self, predicate: _RunPredicate) -> int:
        running = [self._runs[run_id] for ids_ in self._running.values() for run_id in ids_]
        hit = [r for r in running if predicate(r)]
        for run in hit:
            self._interrupt(run)
        return len(hit)
