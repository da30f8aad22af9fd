"""The ``SessionStore`` and ``ApiKeyStore`` seams and the records they trade in.

Every backend (memory, SQLite, PostgreSQL, Redis) implements ``Store``, both
protocols at once, and one contract suite (``tests/contract``) holds them to the
same behaviour. The rules every backend keeps:

- History is append-only. Each message gets the next ``seq`` of its session
  (1, 2, 3, ...) inside the transaction that stores it, so the order is the
  order of commits, whichever process wrote them.
- A turn is two writes: ``begin_turn`` stores the user's message and opens a run
  (status ``running``) before the model is called; ``complete_turn`` stores what
  the turn produced, finishes the run and updates the session's counters, all in
  one transaction. A crash between the two leaves a readable session whose run is
  still ``running``; it becomes ``interrupted`` once its lease has expired.
- One reply at a time per session: ``begin_turn`` needs the session's live
  ``Lease``. Taking over an expired lease marks the old holder's run
  ``interrupted`` (recovery after kill -9).
- Times come from the injected ``Clock``, timezone-aware UTC.
- Ids are checked before any query (``InvalidIdError``); driver failures become
  ``StoreUnavailableError``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal, NewType, Protocol

from agenthost.messages import Message, Usage

SessionId = NewType("SessionId", str)
RunId = NewType("RunId", str)
MessageId = NewType("MessageId", str)
ApiKeyId = NewType("ApiKeyId", str)

RunStatus = Literal["running", "completed", "failed", "cancelled", "interrupted"]
FinalRunStatus = Literal["completed", "failed", "cancelled", "interrupted"]
RUN_STATUSES: Final[tuple[RunStatus, ...]] = (
    "running",
    "completed",
    "failed",
    "cancelled",
    "interrupted",
)

INTERRUPTED_ERROR: Final = "The server stopped before the reply was finished"


class AnyOwner(enum.Enum):
    """Sentinel type: do not filter by owner (admin tools, or auth switched off)."""

    ANY = "any"


ANY_OWNER: Final = AnyOwner.ANY
Owner = ApiKeyId | None
"""Who owns a session: the API key that created it, or ``None`` when auth is off."""
OwnerFilter = ApiKeyId | None | Literal[AnyOwner.ANY]


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """How a store behaves; the composition root fills this from ``Settings``.

    ``timeout`` bounds waiting for the database (SQLite's busy timeout, the
    PostgreSQL and Redis command timeouts). ``redis_ttl`` makes Redis expire a
    session that has not been written to for that long; ``None`` keeps it forever.
    """

    timeout: float = 5.0
    pool_size: int = 10
    idempotency_ttl: timedelta = timedelta(hours=24)
    redis_ttl: timedelta | None = None
    migrate: bool = True


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A conversation. ``total_tokens`` is what its runs spent (prompt + completion)."""

    id: SessionId
    owner: Owner
    agent: str
    title: str
    created_at: datetime
    updated_at: datetime
    message_count: int = 0
    total_tokens: int = 0
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SessionPage:
    """One page of ``list_sessions``; pass ``next_cursor`` back for the next page."""

    sessions: tuple[SessionRecord, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message about to be stored, with its size in tokens (for window reads)."""

    message: Message
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as stored: ``seq`` is its 1-based position in the session."""

    id: MessageId
    session_id: SessionId
    seq: int
    message: Message
    tokens: int
    run_id: RunId | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One assistant turn. ``finished_at`` is set once the status is not ``running``."""

    id: RunId
    session_id: SessionId
    status: RunStatus
    model: str
    usage: Usage
    error: str | None
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class StartedTurn:
    run: RunRecord
    message: StoredMessage
    lease: Lease
    """The lease the turn runs under: the one given, or the one taken (``TakeLease``)."""


@dataclass(frozen=True, slots=True)
class CompletedTurn:
    run: RunRecord
    messages: tuple[StoredMessage, ...]
    session: SessionRecord


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to run a reply in one session until ``expires_at``.

    ``token`` tells this acquisition apart from any other, so a holder that lost
    its lease cannot renew or release somebody else's.
    """

    session_id: SessionId
    holder: str
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TakeLease:
    """For ``begin_turn``: take the session's lease in the same step, as ``acquire_lease``."""

    holder: str
    ttl: timedelta
    token: str | None = None
    """The lease's token (a new one when None). A caller that chose it can give the
    lease back (``release_lease``) when it cannot tell whether the turn began: a
    call cancelled while the store was committing."""


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """An ``Idempotency-Key`` seen from ``owner``: the request it named and its run."""

    owner: Owner
    key: str
    fingerprint: str
    run_id: RunId
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A stored API key: only the SHA-256 of the secret, and a short prefix to show."""

    id: ApiKeyId
    name: str
    prefix: str
    key_hash: str
    rpm: int | None
    tpm: int | None
    max_streams: int | None
    admin: bool
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class SessionStore(Protocol):
    """Conversations, their append-only history, runs, leases and idempotency keys."""

    async def create_session(
        self,
        *,
        owner: Owner,
        agent: str,
        title: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> SessionRecord: ...

    async def get_session(
        self, session_id: SessionId, *, owner: OwnerFilter = ANY_OWNER
    ) -> SessionRecord:
        """The session; ``SessionNotFoundError`` if unknown or owned by someone else."""
        ...

    async def delete_session(
        self, session_id: SessionId, *, owner: OwnerFilter = ANY_OWNER
    ) -> None:
        """Delete the session with its whole history, runs and lease."""
        ...

    async def list_sessions(
        self, *, owner: OwnerFilter, limit: int = 20, cursor: str | None = None
    ) -> SessionPage:
        """Sessions of ``owner``, newest first (by creation)."""
        ...

    async def count_sessions(self) -> int: ...

    async def read_window(
        self, session_id: SessionId, *, budget_tokens: int, max_messages: int
    ) -> list[StoredMessage]:
        """The newest messages whose tokens fit the budget, oldest first.

        A contiguous tail: reading stops at the first message that does not fit.
        """
        ...

    async def read_page(
        self, session_id: SessionId, *, limit: int = 50, before: MessageId | None = None
    ) -> list[StoredMessage]:
        """Up to ``limit`` messages just before ``before`` (or the newest), oldest first."""
        ...

    async def acquire_lease(self, session_id: SessionId, holder: str, ttl: timedelta) -> Lease:
        """Take the session's lease; ``SessionBusyError`` while another one is live."""
        ...

    async def renew_lease(self, lease: Lease, ttl: timedelta) -> Lease:
        """Extend a live lease; ``SessionBusyError`` if it expired or was taken over."""
        ...

    async def release_lease(self, lease: Lease) -> None:
        """Give the lease back; a lease that was already lost is left alone."""
        ...

    async def begin_turn(
        self,
        session_id: SessionId,
        user_message: NewMessage,
        *,
        lease: Lease | TakeLease,
        model: str,
        run_id: RunId | None = None,
    ) -> StartedTurn:
        """Store the user's message and open a ``running`` run, atomically.

        ``lease``: the session's lease, held already, or ``TakeLease`` to take it
        in the same transaction (one round trip, as ``acquire_lease`` then
        ``begin_turn``; ``SessionBusyError`` and nothing written while another
        holder's lease is live).
        """
        ...

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
        """Append the turn's messages, finish the run, update the session: one transaction.

        ``SessionBusyError`` if the run is no longer ``running`` (its lease was lost
        and the run was marked interrupted meanwhile): nothing is written then.
        ``release``: the lease the turn ran under, given back in the same
        transaction (as ``release_lease`` gives it back: only while it is still
        the holder's, and only the run's session's); kept when nothing is written.
        """
        ...

    async def get_run(self, run_id: RunId) -> RunRecord: ...

    async def mark_interrupted(self, holder: str) -> int:
        """On graceful stop: interrupt the runs under ``holder``'s leases, free the leases."""
        ...

    async def recover_interrupted(self) -> int:
        """Mark ``interrupted`` every running run whose lease is gone or expired."""
        ...

    async def put_idempotency(
        self, owner: Owner, key: str, fingerprint: str, run_id: RunId
    ) -> IdempotencyRecord:
        """Record the key; the first record wins and is returned while it lives.

        ``IdempotencyConflictError`` if a live record has another fingerprint.
        """
        ...

    async def get_idempotency(
        self, owner: Owner, key: str, *, fingerprint: str
    ) -> IdempotencyRecord | None:
        """The live record for the key; ``IdempotencyConflictError`` on another fingerprint."""
        ...


class ApiKeyStore(Protocol):
    """API keys, stored hashed. The auth logic lives in the server, not here."""

    async def create_api_key(
        self,
        *,
        name: str,
        prefix: str,
        key_hash: str,
        rpm: int | None = None,
        tpm: int | None = None,
        max_streams: int | None = None,
        admin: bool = False,
    ) -> ApiKeyRecord: ...

    async def get_api_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None: ...

    async def list_api_keys(self) -> list[ApiKeyRecord]: ...

    async def revoke_api_key(self, key_id: ApiKeyId) -> ApiKeyRecord | None:
        """Mark the key revoked (kept for the record); ``None`` if there is no such key."""
        ...

    async def touch_api_key(self, key_id: ApiKeyId) -> None:
        """Set ``last_used_at`` to now."""
        ...


class Store(SessionStore, ApiKeyStore, Protocol):
    """What ``open_store`` yields: both seams, plus a health probe."""

    @property
    def backend(self) -> str:
        """``memory``, ``sqlite``, ``postgres`` or ``redis``."""
        ...

    async def ping(self) -> None:
        """Return if the database answers, else raise ``StoreUnavailableError``."""
        ...
