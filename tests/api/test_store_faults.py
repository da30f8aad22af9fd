"""A store that cannot answer: 503 with Retry-After, and recovery once it is back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from agenthost.messages import ToolCall, ToolCallId
from agenthost.testing import Reply, scripted
from tests.support.sse import parse

from .conftest import running_app


async def test_a_locked_database_is_503_and_the_server_recovers(tmp_path: Path) -> None:
    path = tmp_path / "agenthost.db"
    async with running_app(database_url=f"sqlite:///{path}", database_timeout=0.2) as (_, client):
        assert (await client.post("/chat", json={"message": "before"})).status_code == 200
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            refused = await client.post("/chat", json={"message": "during"})
            created = await client.post("/sessions")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        after = await client.post("/chat", json={"message": "after"})
        listed = (await client.get("/sessions")).json()["sessions"]
    for response in (refused, created):
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1
        body = response.json()
        assert "locked" in body["error"]
        assert str(path) not in body["error"]
    assert after.status_code == 200
    assert len(listed) == 2


async def test_a_store_failing_unexpectedly_at_a_turn_s_end_fails_the_run_not_its_followers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in a store: the stream ends with ``error``, /chat answers, the session is free."""

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug in the store")

    async with running_app() as (app, client):
        monkeypatch.setattr(app.state.services.store, "complete_turn", broken)
        streamed = await client.post("/chat/stream", json={"message": "hi"})
        whole = await client.post("/chat", json={"message": "hi"})
        monkeypatch.undo()
        session_id = parse(streamed.text).events[0].data
        after = await client.post("/chat", json={"message": "again", "session_id": session_id})
    last = parse(streamed.text).events[-1]
    assert last.event == "error"
    assert json.loads(last.data)["error"] == "The reply could not be saved"
    assert whole.status_code == 500
    assert whole.json()["error"] == "The reply could not be saved"
    assert after.status_code == 200  # the lease was given back


async def test_tool_calls_with_halves_of_surrogate_pairs_are_stored_whole(tmp_path: Path) -> None:
    """What a model server's JSON may send: SQLite (UTF-8) stores it, the API returns it."""
    arguments = '{"expression": "1 + 1 \ud83c\udf89 \udc00"}'
    model = scripted(Reply(tool_calls=(ToolCall(ToolCallId("c1"), "calculator", arguments),)), "ok")
    url = f"sqlite:///{tmp_path / 'agenthost.db'}"
    async with running_app(model, database_url=url) as (_, client):
        reply = await client.post("/chat", json={"message": "add"})
        session = await client.get(f"/sessions/{reply.json()['session_id']}")
    assert reply.status_code == 200, reply.text
    assert reply.json()["tool_calls"][0]["arguments"] == '{"expression": "1 + 1 🎉 \ufffd"}'
    assert session.status_code == 200
    stored = next(m for m in session.json()["messages"] if m["role"] == "assistant")
    assert stored["tool_calls"][0]["arguments"] == '{"expression": "1 + 1 🎉 \ufffd"}'
