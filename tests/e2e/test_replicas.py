"""Three replicas behind nginx, sharing the real PostgreSQL and Redis, behave as one service.

Each replica is a real ``agenthost serve`` process on its own loopback port;
nginx (deploy/nginx/nginx.conf, installed with apt-get when missing) balances
them. Requests that must land on a particular replica go to its port directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agenthost.stores import open_store
from agenthost.stores.base import RunId, RunRecord
from tests.support.process import ServerProcess, free_port, serve
from tests.support.services import postgres_base, redis_base, require_service
from tests.support.sse import Event, Parser, parse, tokens

ROOT = Path(__file__).resolve().parents[2]
LONG = "word " * 200  # test:slow echoes it at a word every 50 ms: about 10 s


@dataclass
class Cluster:
    replicas: list[ServerProcess]
    balancer: str
    database_url: str
    key: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def client(self, index: int) -> httpx.Client:
        return httpx.Client(base_url=self.replicas[index].url, headers=self.headers(), timeout=60)


def _nginx() -> str:
    found = shutil.which("nginx") or (os.path.exists("/usr/sbin/nginx") and "/usr/sbin/nginx")
    if found:
        return str(found)
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], check=False, env=env)
        if os.path.exists("/usr/sbin/nginx"):
            return "/usr/sbin/nginx"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("nginx is missing and could not be installed with apt-get")
    pytest.skip("nginx is missing (apt-get install nginx)")


@contextlib.contextmanager
def _database() -> Iterator[str]:
    name = f"agenthost_replicas_{uuid.uuid4().hex[:10]}"
    admin = postgres_base()
    _psql(admin, f"CREATE DATABASE {name}")
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _psql(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _psql(url: str, sql: str) -> None:
    async def run() -> None:
        import asyncpg

        connection = await asyncpg.connect(url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


@contextlib.contextmanager
def _balancer(nginx: str, replicas: list[ServerProcess], prefix: Path) -> Iterator[str]:
    port = free_port()
    prefix.mkdir(parents=True, exist_ok=True)
    config = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    (prefix / "nginx.conf").write_text(config.replace("listen 8080;", f"listen 127.0.0.1:{port};"))
    servers = "\n".join(
        f"    server {r.url.removeprefix('http://')} max_fails=3 fail_timeout=10s;"
        for r in replicas
    )
    (prefix / "upstream.conf").write_text(
        f"upstream agenthost {{\n    least_conn;\n{servers}\n    keepalive 32;\n}}\n"
    )
    command = [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    command += ["-g", f"daemon off; pid {prefix}/nginx.pid;"]
    with (prefix / "error.log").open("w") as errors:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            assert process.poll() is None, (prefix / "error.log").read_text()
            assert time.monotonic() < deadline, "nginx did not come up"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_service("PostgreSQL", postgres_base())
    require_service("Redis", redis_base())
    nginx = _nginx()
    home = tmp_path_factory.mktemp("replicas")
    with _database() as database_url, contextlib.ExitStack() as stack:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AGENTHOST_", "OPENAI_"))},
            "HOME": str(home),
            "AGENTHOST_DATABASE_URL": database_url,
            "AGENTHOST_REDIS_URL": redis_base(),
            "AGENTHOST_AUTH": "keys",
            "AGENTHOST_LEASE_TTL_SECONDS": "2",
            "AGENTHOST_SHUTDOWN_GRACE_SECONDS": "1",
        }
        key = subprocess.run(
            [
                sys.executable,
                "-m",
                "agenthost",
                "keys",
                "create",
                "--name",
                "replicas",
                "--rpm",
                "0",
                "--max-streams",
                "0",
            ],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        replicas = [stack.enter_context(serve(env, home, "--model", "test:slow")) for _ in range(3)]
        balancer = stack.enter_context(_balancer(nginx, replicas, home / "nginx"))
        yield Cluster(replicas, balancer, database_url, key)


def _stream_until(client: httpx.Client, body: dict[str, object], count: int) -> list[Event]:
    """Start a stream, read ``count`` token events, then drop the connection."""
    parser = Parser()
    seen: list[Event] = []
    with client.stream("POST", "/chat/stream", json=body) as response:
        assert response.status_code == 200
        for chunk in response.iter_text():
            seen.extend(parser.feed(chunk))
            if sum(e.event == "token" for e in seen) >= count:
                break
    return seen


def _run(database_url: str, run_id: str) -> RunRecord:
    async def read() -> RunRecord:
        async with open_store(database_url) as store:
            return await store.get_run(RunId(run_id))

    return asyncio.run(read())


def test_a_session_continues_through_every_replica(cluster: Cluster) -> None:
    with cluster.client(0) as a, cluster.client(1) as b, cluster.client(2) as c:
        session_id = a.post("/sessions").json()["session_id"]
        for http, text in ((b, "one"), (c, "two"), (a, "three")):
            reply = http.post("/chat", json={"message": text, "session_id": session_id})
            assert reply.json()["response"] == f"You said: {text}"
        history = c.get(f"/sessions/{session_id}").json()
    assert [m["content"] for m in history["messages"]] == [
        "one",
        "You said: one",
        "two",
        "You said: two",
        "three",
        "You said: three",
    ]


def test_a_cut_stream_resumes_exactly_on_another_replica(cluster: Cluster) -> None:
    with cluster.client(0) as a, cluster.client(1) as b:
        first = _stream_until(a, {"message": LONG}, 5)
        run_id = json.loads(first[1].data)["run_id"]
        last = first[-1].id
        assert last is not None
        rest = parse(b.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": last}).text).events
    assert rest[0].id == str(int(last) + 1)
    assert rest[-1].event == "done"
    assert tokens(first) + tokens(rest) == "You said: " + LONG


def test_cancel_through_another_replica_stops_the_run(cluster: Cluster) -> None:
    with cluster.client(0) as a, cluster.client(2) as c:
        first = _stream_until(a, {"message": LONG}, 3)
        run_id = json.loads(first[1].data)["run_id"]
        cancelled = c.post(f"/runs/{run_id}/cancel")
        rest = parse(a.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": "2"}).text).events
        history = c.get(f"/sessions/{first[0].data}").json()
    assert cancelled.json() == {"run_id": run_id, "cancelled": True}
    assert rest[-1].event == "done"
    assert _run(cluster.database_url, run_id).status == "cancelled"
    partial = tokens(rest)
    assert 0 < len(partial) < len("You said: " + LONG)
    assert history["messages"][-1]["content"] == partial


def test_streams_pass_through_the_balancer_intact(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.balancer, headers=cluster.headers(), timeout=60) as lb:
        events = parse(lb.post("/chat/stream", json={"message": "through nginx"}).text).events
        ids = {lb.get("/health").headers["x-request-id"] for _ in range(3)}
    assert tokens(events) == "You said: through nginx"
    assert events[-1].event == "done"
    assert len(ids) == 3


def test_a_request_limit_holds_across_replicas(cluster: Cluster, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AGENTHOST_", "OPENAI_"))},
        "AGENTHOST_DATABASE_URL": cluster.database_url,
    }
    key = subprocess.run(
        [sys.executable, "-m", "agenthost", "keys", "create", "--name", "limited", "--rpm", "6"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    statuses = []
    for n in range(15):  # through nginx, and straight to each replica in turn
        base = cluster.balancer if n % 2 else cluster.replicas[n % 3].url
        headers = {"Authorization": f"Bearer {key}", "Connection": "close"}
        statuses.append(httpx.get(f"{base}/sessions", headers=headers, timeout=30).status_code)
    assert statuses.count(200) == 6
    assert statuses.count(429) == 9


def test_sigkill_of_the_streaming_replica_loses_no_completed_turn(cluster: Cluster) -> None:
    victim = cluster.replicas[0]
    with cluster.client(0) as a:
        done = a.post("/chat", json={"message": "kept"}).json()
        session_id = done["session_id"]
        first = _stream_until(a, {"message": LONG, "session_id": session_id}, 3)
    run_id = json.loads(first[1].data)["run_id"]
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(timeout=10)
    with cluster.client(1) as b:
        history = b.get(f"/sessions/{session_id}").json()
        deadline = time.monotonic() + 20
        while _run(cluster.database_url, run_id).status == "running":
            assert time.monotonic() < deadline, "the killed run was never marked interrupted"
            time.sleep(0.2)
        after = b.post("/chat", json={"message": "still here", "session_id": session_id})
    assert [m["content"] for m in history["messages"]][:3] == ["kept", "You said: kept", LONG]
    assert _run(cluster.database_url, run_id).status == "interrupted"
    assert _run(cluster.database_url, done["run_id"]).status == "completed"
    assert after.json()["response"] == "You said: still here"
