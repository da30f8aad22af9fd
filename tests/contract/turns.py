"""What the store contract tests do again and again: run a whole turn, the API's way."""

from __future__ import annotations

from datetime import timedelta

from agenthost.messages import Message, Usage
from agenthost.stores import CompletedTurn, NewMessage, SessionId, Store

LEASE = timedelta(seconds=30)
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
    """Lease, begin, complete, release: one user message and one reply."""
    lease = await store.acquire_lease(session_id, "test-holder", LEASE)
    try:
        started = await store.begin_turn(session_id, user(text), lease=lease, model="test")
        return await store.complete_turn(started.run.id, [assistant(reply)], usage=usage)
    finally:
        await store.release_lease(lease)
