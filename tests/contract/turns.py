"""What the store contract tests do again and again: run a whole turn, the API's way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from agenthost.messages import Message, Usage
from agenthost.stores import CompletedTurn, Lease, NewMessage, SessionId, Store, TakeLease

LEASE = timedelta(seconds=30)
HOLDER = "test-holder"
TURN_USAGE = Usage(7, 3)


def user(text: str) -> NewMessage:
    return NewMessage(Message.user(text), tokens=max(1, len(text) // 4))


def assistant(text: str) -> NewMessage:
    return NewMessage(Message.assistant(text), tokens=max(1, len(text) // 4))


async def turn(
    store: Store,
    session_id: SessionId,
    text: str = "hello",
    reply: str = "hi there",
    *,
    usage: Usage = TURN_USAGE,
) -> CompletedTurn:
    """One user message and one reply, as the server runs them: begin taking the lease
    (with a token of our own), complete giving it back, and give it back anyway when
    the turn stops half way (cancelled, say)."""
    token = str(uuid.uuid4())
    try:
        started = await store.begin_turn(
            session_id, user(text), lease=TakeLease(HOLDER, LEASE, token), model="test"
        )
        return await store.complete_turn(
            started.run.id, [assistant(reply)], usage=usage, release=started.lease
        )
    finally:
        await store.release_lease(Lease(session_id, HOLDER, token, datetime.now(UTC)))
