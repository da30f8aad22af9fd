"""Start and stop the processes of a benchmark: the mock upstream and the servers under test.

Each runs in its own process, pinned with ``taskset``: the server under test
alone on one core, the upstream and the load generator on the other. agenthost
runs as its users run it (``agenthost serve``, one worker, ``openai:<model>``
pointed at the mock, sessions in memory) from an empty directory with a clean
environment, so no ``.env`` or ``AGENTHOST_*`` variable of the developer's
changes what is measured.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
START_TIMEOUT = 30.0
BENCH_SETTINGS = {
    "AGENTHOST_DATABASE_URL": "memory://",
    "OPENAI_API_KEY": "bench",
    # All the load comes from one address, so per-caller limits would only refuse it.
    "AGENTHOST_AUTH": "none",
    "AGENTHOST_RATE_LIMIT_RPM": "0",
    "AGENTHOST_RATE_LIMIT_TPM": "0",
    "AGENTHOST_MAX_STREAMS": "0",
}
"""agenthost's settings for the benchmark (the rest are its defaults)."""
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class Pinning:
    """CPU lists for ``taskset``; None runs unpinned (a machine with one core)."""

    server: str | None
    harness: str | None

    @classmethod
    def detect(cls) -> Pinning:
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) < 2:
            return cls(None, None)
        return cls(str(cores[0]), ",".join(str(c) for c in cores[1:]))

    def command(self, cpus: str | None, argv: Sequence[str]) -> list[str]:
        return ["taskset", "-c", cpus, *argv] if cpus else list(argv)


@dataclass
class Running:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_environment(source: Path | None = None) -> dict[str, str]:
    """The environment less agenthost's, OpenAI's and Python's variables.

    ``source``: a directory holding an ``agenthost`` package (another checkout's
    ``src``), imported instead of the installed one, to compare two versions.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AGENTHOST_", "OPENAI_", "PYTHON"))
    }
    paths = [str(source)] if source is not None else []
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(REPO)])
    return env


def _command(name: str, port: int, upstream_base: str) -> list[str]:
    python = sys.executable
    if name == "agenthost":
        return [
            python,
            "-m",
            "agenthost",
            "serve",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            "1",
            "--model",
            "openai:bench",
        ]
    if name.endswith("-relay"):
        client = name.removesuffix("-relay")
        return [
            python,
            "-m",
            "bench.relay",
            "--client",
            client,
            "--upstream",
            upstream_base,
            "--host",
            HOST,
            "--port",
            str(port),
        ]
    raise ValueError(f"unknown target {name!r}")


@contextmanager
def run_target(
    name: str,
    upstream_base: str,
    pinning: Pinning,
    workdir: Path,
    *,
    source: Path | None = None,
    prefix: Sequence[str] = (),
    start_timeout: float = START_TIMEOUT,
) -> Iterator[Running]:
    """The server ``name`` listening, relaying to ``upstream_base``; stopped on exit.

    ``prefix``: a command the server runs under (valgrind, for ``bench.instructions``).
    """
    port = free_port()
    argv = [*prefix, *_command(name, port, upstream_base)]
    env = _clean_environment(source)
    env.update(BENCH_SETTINGS, AGENTHOST_OPENAI_BASE_URL=upstream_base)
    ready_path = "/ready" if name == "agenthost" else "/health"
    with _process(name, pinning.command(pinning.server, argv), env, port, workdir) as running:
        _wait_ready(running, ready_path, start_timeout)
        yield running


@contextmanager
def run_upstream(pinning: Pinning, workdir: Path) -> Iterator[Running]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.upstream", "--host", HOST, "--port", str(port)]
    command = pinning.command(pinning.harness, argv)
    with _process("upstream", command, _clean_environment(), port, workdir) as running:
        _wait_ready(running, "/health")
        yield running


@contextmanager
def _process(
    name: str, command: list[str], env: dict[str, str], port: int, workdir: Path
) -> Iterator[Running]:
    log = workdir / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    running = Running(name, process, port, log)
    try:
        yield running
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_ready(running: Running, path: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise RuntimeError(f"{running.name} exited at start:\n{tail(running.log)}")
        try:
            connection = http.client.HTTPConnection(HOST, running.port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                connection.close()
                return
            connection.close()
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{running.name} was not ready in {timeout:.0f}s:\n{tail(running.log)}")


def tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
