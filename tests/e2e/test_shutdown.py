"""SIGTERM with replies streaming: short ones finish, long ones end with a retry hint and are
saved as interrupted, and the process exits 0 soon after the grace period."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from pathlib import Path

import httpx

from agenthost.stores import open_store
from agenthost.stores.base import RunId, RunRecord, SessionId, StoredMessage
from tests.support.process import ServerProcess, serve
from tests.support.sse import Event, Parser, tokens

GRACE = 2.0


def stream_in_thread(server: ServerProcess, message: str, events: list[Event]) -> threading.Thread:
    def run() -> None:
        parser = Parser()
        with (
            httpx.Client(base_url=server.url, timeout=60) as http,
            http.stream("POST", "/chat/stream", json={"message": message}) as response,
        ):
            for chunk in response.iter_text():
                events.extend(parser.feed(chunk))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_for_tokens(events: list[Event], count: int) -> None:
    deadline = time.monotonic() + 20
    while sum(e.event == "token" for e in events) < count:
        assert time.monotonic() < deadline, events
        time.sleep(0.01)


def test_sigterm_finishes_short_replies_and_interrupts_long_ones(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/agenthost.db"
    env = {
        **clean_env,
        "AGENTHOST_DATABASE_URL": url,
        "AGENTHOST_SHUTDOWN_GRACE_SECONDS": str(GRACE),
    }
    short: list[Event] = []
    long: list[Event] = []
    with serve(env, tmp_path, "--model", "test:slow") as server:
        # test:slow sends a word every 50 ms: "You said: " plus the message, echoed.
        short_thread = stream_in_thread(server, "quick one", short)
        long_thread = stream_in_thread(server, "word " * 400, long)
        wait_for_tokens(short, 1)
        wait_for_tokens(long, 3)
        stopped_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        refused = _post_during_shutdown(server)
        code = server.process.wait(timeout=30)
        took = time.monotonic() - stopped_at
        short_thread.join(timeout=10)
        long_thread.join(timeout=10)

    assert code == 0, server.output()
    assert took < GRACE + 5
    assert refused in ("refused", 503)
    assert short[-1].event == "done"
    assert tokens(short) == "You said: quick one"

    assert long[-1].event == "error"
    error = json.loads(long[-1].data)
    assert error["error"] == "The server is restarting; send the message again in a moment"
    assert error["retry_after"] == 5
    partial = tokens(long)
    assert 0 < len(partial) < len("You said: " + "word " * 400)

    run_id = RunId(json.loads(long[1].data)["run_id"])
    session_id = SessionId(long[0].data)
    run, history = asyncio.run(_stored(url, run_id, session_id))
    assert run.status == "interrupted"
    assert history[-1].message.content == partial


def _post_during_shutdown(server: ServerProcess) -> str | int:
    try:
        response = httpx.post(f"{server.url}/chat", json={"message": "late"}, timeout=5)
    except httpx.HTTPError:
        return "refused"
    return response.status_code


async def _stored(
    url: str, run_id: RunId, session_id: SessionId
) -> tuple[RunRecord, list[StoredMessage]]:
    async with open_store(url) as store:
        run = await store.get_run(run_id)
        history = await store.read_page(session_id, limit=10)
    return run, history
