"""``agenthost serve`` as a real process: the lesson's curl flow, and history across restarts."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from tests.support.process import serve
from tests.support.sse import parse, tokens


def test_the_lesson_flow_and_history_surviving_a_restart(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**clean_env, "AGENTHOST_DATABASE_URL": f"sqlite:///{tmp_path}/agenthost.db"}
    with serve(env, tmp_path, "--model", "test") as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            session_id = http.post("/sessions").json()["session_id"]
            reply = http.post("/chat", json={"message": "Hello!", "session_id": session_id})
            assert reply.json()["response"] == "You said: Hello!"
            stream = http.post(
                "/chat/stream", json={"message": "Tell me a story", "session_id": session_id}
            )
            events = parse(stream.text).events
            assert events[0].data == session_id
            assert tokens(events) == "You said: Tell me a story"
            before = http.get(f"/sessions/{session_id}").json()
            assert before["message_count"] == 4
            health = http.get("/health").json()
            assert health["status"] == "healthy"
            assert health["sessions_active"] == 1
            doomed = http.post("/sessions").json()["session_id"]
            assert http.delete(f"/sessions/{doomed}").status_code == 204
        assert server.stop(signal.SIGTERM) == 0
    assert "serving on http://127.0.0.1:" in server.output()

    with serve(env, tmp_path, "--model", "test") as again:
        with httpx.Client(base_url=again.url, timeout=30) as http:
            after = http.get(f"/sessions/{session_id}").json()
            assert after["messages"] == before["messages"]
            assert after["tokens_used"] == before["tokens_used"]
            assert http.get(f"/sessions/{doomed}").status_code == 404
            more = http.post("/chat", json={"message": "Still there?", "session_id": session_id})
            assert more.json()["tokens_used"] > before["tokens_used"]
        assert again.stop(signal.SIGINT) == 0
