"""The rules every backend shares, so that they cannot drift apart.

``take_window`` cuts the newest messages down to a token budget (a contiguous
tail: it stops at the first message that does not fit); the ``check_*``
functions validate arguments before any query; the last few build the errors
every backend raises for the same situations, worded once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar, get_args

from agenthost.errors import IdempotencyConflictError, InvalidIdError, SessionBusyError
from agenthost.stores import ids
from agenthost.stores.base import (
    RUN_STATUSES,
    FinalRunStatus,
    Lease,
    NewMessage,
    RunId,
    RunStatus,
    SessionId,
    StoredMessage,
    TakeLease,
)

T = TypeVar("T")
FIRST_CHUNK = 32


def take_window(newest_first: Iterable[StoredMessage], budget_tokens: int) -> list[StoredMessage]:
    """The newest messages whose tokens fit ``budget_tokens``, oldest first (reads lazily)."""
    kept: list[StoredMessage] = []
    spent = 0
    for message in newest_first:
        if spent + message.tokens > budget_tokens:
            break
        spent += message.tokens
        kept.append(message)
    kept.reverse()
    return kept


async def read_backwards(
    fetch: Callable[[int | None, int], Awaitable[Sequence[T]]],
    tokens: Callable[[T], int],
    seq: Callable[[T], int],
    *,
    budget_tokens: int,
    max_messages: int,
) -> list[T]:
    """The newest rows that fit the budget, newest first, read in growing chunks.

    ``fetch(before_seq, limit)`` returns up to ``limit`` rows older than
    ``before_seq`` (or the newest), newest first. Chunks start small and grow,
    so a window costs about what it holds, however long the history and
    however generous ``max_messages``.
    """
    kept: list[T] = []
    spent, before, chunk = 0, None, FIRST_CHUNK
    while len(kept) < max_messages:
        wanted = min(chunk, max_messages - len(kept))
        rows = await fetch(before, wanted)
        for row in rows:
            if spent + tokens(row) > budget_tokens:
                return kept
            spent += tokens(row)
            kept.append(row)
        if len(rows) < wanted:
            return kept
        before, chunk = seq(rows[-1]), chunk * 4
    return kept


def check_window(budget_tokens: int, max_messages: int) -> None:
    if budget_tokens < 0:
        raise ValueError("budget_tokens must not be negative")
    if max_messages < 1:
        raise ValueError("max_messages must be at least 1")


def check_ttl(ttl: timedelta) -> timedelta:
    if ttl <= timedelta(0):
        raise ValueError("a lease needs a positive ttl")
    return ttl


def check_new_messages(messages: Sequence[NewMessage]) -> tuple[NewMessage, ...]:
    checked = tuple(messages)
    for new in checked:
        if new.tokens < 0:
            raise ValueError("a message cannot cost negative tokens")
    return checked


def check_turn(
    session_id: SessionId,
    user_message: NewMessage,
    lease: Lease | TakeLease,
    run_id: RunId | None,
    now: datetime,
) -> tuple[SessionId, RunId, NewMessage, Lease]:
    """``begin_turn``'s arguments, checked before any query: the ids, the message, the lease.

    A ``TakeLease`` becomes the lease to take (a new token, expiring ``ttl`` from ``now``).
    """
    sid = ids.parse_session_id(session_id)
    rid = ids.new_run_id() if run_id is None else ids.parse_run_id(run_id)
    (new,) = check_new_messages([user_message])
    if isinstance(lease, TakeLease):
        token = ids.new_id() if lease.token is None else lease.token
        return sid, rid, new, Lease(sid, lease.holder, token, now + check_ttl(lease.ttl))
    if lease.session_id != sid:
        raise SessionBusyError("That lease belongs to another session")
    return sid, rid, new, lease


_FINAL_STATUSES = frozenset(get_args(FinalRunStatus))


def check_final_status(status: FinalRunStatus) -> FinalRunStatus:
    if status not in _FINAL_STATUSES:
        raise ValueError(f"a turn cannot finish with status {status!r}")
    return status


def lease_lost() -> SessionBusyError:
    return SessionBusyError(
        "The session's lease was lost (it expired or another reply took it over)"
    )


def run_finished(status: str) -> SessionBusyError:
    return SessionBusyError(
        f"This run is no longer running (it is {status}): its lease was lost, "
        "and its session may have moved on"
    )


def unknown_message() -> InvalidIdError:
    return InvalidIdError("No message with that id in this session")


def idempotency_conflict() -> IdempotencyConflictError:
    return IdempotencyConflictError(
        "This Idempotency-Key was already used with a different request; use a new key"
    )


def run_status(value: object) -> RunStatus:
    """A status read back from a database, checked rather than trusted."""
    for status in RUN_STATUSES:
        if value == status:
            return status
    raise ValueError(f"unknown run status in the database: {value!r}")


def reply_running() -> SessionBusyError:
    return SessionBusyError("A reply is already running in this session")
