"""Rows of the SQL store: the column lists, and turning rows back into records.

Shared by both halves of ``SQLSessionStore`` (``sql.py``, ``sql_turns.py``) and
both databases: ids come back as text (SQLite) or ``uuid`` (PostgreSQL), times as
microseconds or ``timestamptz``, and all of it is normalised here.
"""

from __future__ import annotations

from agenthost.errors import SessionNotFoundError
from agenthost.messages import Usage
from agenthost.stores import ids
from agenthost.stores.base import (
    AnyOwner,
    MessageId,
    OwnerFilter,
    RunId,
    RunRecord,
    SessionId,
    SessionRecord,
    StoredMessage,
)
from agenthost.stores.encoding import decode_message, decode_metadata
from agenthost.stores.rules import run_status
from agenthost.stores.sql_database import Row, SQLConnection, read_optional_time, read_time

SESSION = "id, owner, agent, title, created_at, updated_at, message_count, total_tokens, metadata"
MESSAGE = "id, session_id, seq, body, tokens, run_id, created_at"
NO_SEQ = 1 << 62  # above any seq: "before the end of the history"
RUN = (
    "id, session_id, status, model, prompt_tokens, completion_tokens, error, started_at,"
    " finished_at"
)


async def lock_session(c: SQLConnection, session_id: SessionId) -> None:
    """Lock the session row: every write to a session takes this lock first (no deadlocks)."""
    if not await c.execute(
        "UPDATE sessions SET message_count = message_count WHERE id = ?", session_id
    ):
        raise SessionNotFoundError()


def owner_clause(owner: OwnerFilter) -> tuple[list[str], list[object]]:
    if isinstance(owner, AnyOwner):
        return [], []
    if owner is None:
        return ["owner IS NULL"], []
    return ["owner = ?"], [owner]


async def get_session(c: SQLConnection, session_id: SessionId, owner: OwnerFilter) -> SessionRecord:
    row = await c.fetchone(f"SELECT {SESSION} FROM sessions WHERE id = ?", session_id)
    if row is None:
        raise SessionNotFoundError()
    record = session_row(row)
    if not ids.owner_matches(owner, record.owner):
        raise SessionNotFoundError()
    return record


def session_row(row: Row) -> SessionRecord:
    sid, owner, agent, title, created, updated, count, tokens, metadata = row
    return SessionRecord(
        id=SessionId(str(sid)),
        owner=None if owner is None else ids.parse_api_key_id(str(owner)),
        agent=agent,
        title=title,
        created_at=read_time(created),
        updated_at=read_time(updated),
        message_count=count,
        total_tokens=tokens,
        metadata=decode_metadata(metadata),
    )


def message_row(row: Row) -> StoredMessage:
    mid, sid, seq, body, tokens, run_id, created = row
    return StoredMessage(
        id=MessageId(str(mid)),
        session_id=SessionId(str(sid)),
        seq=seq,
        message=decode_message(body),
        tokens=tokens,
        run_id=None if run_id is None else RunId(str(run_id)),
        created_at=read_time(created),
    )


def run_row(row: Row) -> RunRecord:
    rid, sid, status, model, prompt, completion, error, started, finished = row
    return RunRecord(
        id=RunId(str(rid)),
        session_id=SessionId(str(sid)),
        status=run_status(status),
        model=model,
        usage=Usage(prompt, completion),
        error=error,
        started_at=read_time(started),
        finished_at=read_optional_time(finished),
    )
