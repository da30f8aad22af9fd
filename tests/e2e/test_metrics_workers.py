"""``agenthost serve --workers 2``: a scrape, whichever worker answers it, counts both workers."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import httpx

from tests.support.metrics import Scrape
from tests.support.process import ServerProcess, serve
from tests.support.sse import parse

CHATS, STREAMS, HEALTHS, MISSING = 7, 3, 5, 2
MORE_HEALTH_CHECKS = 200


def request(server: ServerProcess, method: str, path: str, body: object = None) -> httpx.Response:
    """One request on a connection of its own, so the workers share the traffic."""
    with httpx.Client(base_url=server.url, timeout=30, headers={"Connection": "close"}) as http:
        return http.request(method, path, json=body)


def served_by(server: ServerProcess) -> Counter[int]:
    """How many requests each worker process logged (not counting the readiness polls)."""
    pids: Counter[int] = Counter()
    for line in server.output().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry["logger"] == "agenthost.access" and entry["route"] != "/ready":
                pids[entry["pid"]] += 1
    return pids


def test_a_scrape_sums_the_exact_counts_of_both_workers(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {
        **clean_env,
        "AGENTHOST_DATABASE_URL": f"sqlite:///{tmp_path}/agenthost.db",
        "AGENTHOST_LOG_FORMAT": "json",
        "TMPDIR": str(temp),  # where the server makes its metrics directory
    }
    with serve(env, tmp_path, "--workers", "2", "--model", "test") as server:
        session_tokens = []
        for n in range(CHATS):
            reply = request(server, "POST", "/chat", {"message": f"chat {n}"})
            assert reply.status_code == 200, reply.text
            session_tokens.append(reply.json()["tokens_used"])
        for n in range(STREAMS):
            stream = request(server, "POST", "/chat/stream", {"message": f"stream {n}"})
            assert stream.status_code == 200
            events = parse(stream.text).events
            assert events[-1].event == "done"
            session_tokens.append(int(events[-1].data))
        for _ in range(HEALTHS):
            assert request(server, "GET", "/health").status_code == 200
        for _ in range(MISSING):
            assert request(server, "GET", "/no/such/page").status_code == 404
        healths = HEALTHS
        while len(served_by(server)) < 2 and healths < MORE_HEALTH_CHECKS:
            assert request(server, "GET", "/health").status_code == 200  # until both served
            healths += 1
        workers = served_by(server)
        metrics = Scrape(request(server, "GET", "/metrics").text)
        again = Scrape(request(server, "GET", "/metrics").text)
        assert server.stop(signal.SIGTERM) == 0

    assert len(workers) == 2, f"one worker served everything: {workers}"
    assert sum(workers.values()) == CHATS + STREAMS + healths + MISSING
    requests = "agenthost_http_requests_total"
    assert metrics.value(requests, route="/chat", method="POST", status="200") == CHATS
    assert metrics.value(requests, route="/chat/stream", method="POST", status="200") == STREAMS
    assert metrics.value(requests, route="/health", method="GET", status="200") == healths
    assert metrics.value(requests, route="unmatched", method="GET", status="404") == MISSING
    assert metrics.series(requests) == again.series(requests)  # scrapes are not counted
    duration = "agenthost_http_request_duration_seconds_count"
    assert metrics.value(duration, route="/chat/stream", method="POST") == STREAMS
    turns = CHATS + STREAMS
    assert metrics.value("agenthost_runs_total", agent="assistant", status="completed") == turns
    labels = {"model": "test", "agent": "assistant"}
    assert metrics.value("agenthost_time_to_first_token_seconds_count", **labels) == turns
    tokens = sum(
        metrics.value("agenthost_model_tokens_total", direction=direction, **labels)
        for direction in ("in", "out")
    )
    assert tokens == sum(session_tokens)  # one turn per session: its total is the turn's
    store = "agenthost_store_operation_duration_seconds_count"
    assert metrics.value(store, operation="begin_turn", backend="sqlite") == turns
    assert metrics.value(store, operation="complete_turn", backend="sqlite") == turns
    assert metrics.value("agenthost_active_streams") == 0
    assert list(temp.iterdir()) == []  # the metrics directory is gone
