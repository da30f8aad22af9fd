"""A running reply keeps its session's lease, renewed by one task for all the process's runs."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from agenthost.errors import SessionBusyError
from agenthost.runs.turn import TurnRequest
from agenthost.services import ServerServices
from agenthost.stores.base import SessionId, StartedTurn
from agenthost.testing import Reply, scripted
from tests.api.conftest import running_app

TTL = 0.3  # seconds: renewed every 0.1 s


def renewal_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "lease renewal" and not t.done()]


async def test_a_reply_longer_than_the_lease_keeps_it_and_frees_it_at_the_end() -> None:
    slow = [Reply(" ".join(["word"] * 20), delay=0.1) for _ in range(3)]  # 2 s each
    async with running_app(scripted(*slow), lease_ttl_seconds=TTL) as (app, client):
        services: ServerServices = app.state.services
        replies = [
            asyncio.create_task(client.post("/chat", json={"message": f"hi {n}"})) for n in range(3)
        ]
        await asyncio.sleep(0.05)
        sessions = [
            SessionId(s.id) for s in (await services.store.list_sessions(owner=None)).sessions
        ]
        assert len(sessions) == 3
        assert len(renewal_tasks()) == 1  # one task, however many runs
        await asyncio.sleep(3 * TTL)  # far past the first lease's expiry: still held
        for session_id in sessions:
            with pytest.raises(SessionBusyError):
                await services.store.acquire_lease(session_id, "intruder", timedelta(seconds=1))
        responses = await asyncio.gather(*replies)
        assert [r.status_code for r in responses] == [200] * 3
        for session_id in sessions:  # released at the end of each reply
            lease = await services.store.acquire_lease(session_id, "next", timedelta(seconds=1))
            await services.store.release_lease(lease)
        await asyncio.sleep(2 * TTL)
        assert renewal_tasks() == []  # nothing running: the renewal task has ended


async def test_a_start_cancelled_as_its_turn_began_gives_the_lease_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store committed, then the caller was cancelled before hearing so: the lease the
    turn took is given back (the run is left to crash recovery), so the session is not
    busy until the lease expires."""
    async with running_app() as (app, _):
        services: ServerServices = app.state.services
        store = services.store
        session = await store.create_session(owner=None, agent="assistant")
        begin = store.begin_turn

        async def committed_then_cancelled(*args: Any, **kwargs: Any) -> StartedTurn:
            await begin(*args, **kwargs)
            raise asyncio.CancelledError

        monkeypatch.setattr(store, "begin_turn", committed_then_cancelled)
        with pytest.raises(asyncio.CancelledError):
            await services.runs.start(
                TurnRequest(message="hi", owner=None, session_id=SessionId(session.id))
            )
        monkeypatch.undo()
        lease = await store.acquire_lease(session.id, "next", timedelta(seconds=1))
        await store.release_lease(lease)
        assert (await store.get_session(session.id)).message_count == 1  # it had begun
