"""Two worker processes sharing the real Redis: limits hold for the service, not per worker.

The moving window's check-and-count and the stream table's take-a-slot are
each one atomic step in Redis, so the totals are exact: no request slips
through between two workers' checks.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.process import ServerProcess, serve
from tests.support.services import redis_base, require_service


@pytest.fixture
def env(clean_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    require_service("Redis", redis_base())
    return {
        **clean_env,
        "AGENTHOST_DATABASE_URL": f"sqlite:///{tmp_path}/agenthost.db",
        "AGENTHOST_REDIS_URL": redis_base(),
        "AGENTHOST_AUTH": "keys",
    }


def create_key(env: dict[str, str], cwd: Path, *limits: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "agenthost", "keys", "create", "--name", "e2e", *limits],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def statuses(server: ServerProcess, key: str, bodies: list[dict[str, object]]) -> list[int]:
    """Send each body on its own connection, all at once, so both workers take some."""

    def send(body: dict[str, object]) -> int:
        headers = {"Authorization": f"Bearer {key}", "Connection": "close"}
        with httpx.Client(base_url=server.url, timeout=60) as http:
            return http.post("/chat", json=body, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(send, bodies))


def worker_pids(server: ServerProcess) -> set[int]:
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    return {int(pid) for pid in children.read_text().split()}


def test_requests_per_minute_hold_across_two_workers(env: dict[str, str], tmp_path: Path) -> None:
    key = create_key(env, tmp_path, "--rpm", "10")
    with serve(env, tmp_path, "--model", "test", "--workers", "2") as server:
        assert len(worker_pids(server)) >= 2  # the workers (and multiprocessing's tracker)
        results = statuses(server, key, [{"message": f"m{n}"} for n in range(30)])
        server.stop()
    assert results.count(200) == 10
    assert results.count(429) == 20


def test_token_and_stream_limits_hold_across_two_workers(
    env: dict[str, str], tmp_path: Path
) -> None:
    tokens_key = create_key(env, tmp_path, "--tpm", "1000", "--rpm", "0")
    streams_key = create_key(env, tmp_path, "--max-streams", "2", "--rpm", "0")
    with serve(env, tmp_path, "--model", "test:slow", "--workers", "2") as server:
        # Each request reserves its message (about 6 tokens) plus max_tokens=200.
        token_results = statuses(
            server, tokens_key, [{"message": "short one", "max_tokens": 200} for _ in range(10)]
        )
        long_message = "word " * 60  # the slow test model takes about 3 s to echo it
        stream_results = statuses(server, streams_key, [{"message": long_message}] * 6)
        server.stop()
    assert token_results.count(200) == 4
    assert token_results.count(429) == 6
    assert stream_results.count(200) == 2
    assert stream_results.count(429) == 4
