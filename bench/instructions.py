"""Instructions per request and per token, counted: ``python -m bench.instructions``.

The serving benchmark (``bench.run``) measures CPU time, which this shared
machine moves by 10-40% between runs: a change of a few percent cannot be
seen in it. This counts the instructions the server executes instead, under
valgrind's callgrind, which gives the same count for the same work whatever
else the machine is doing (runs of one version agree within 1%).

Each server (agenthost as ``make bench`` runs it, and the aiohttp relay for
reference) runs under callgrind with instrumentation off until it has served
a warm-up; then it is switched on (``callgrind_control``) for the measured
requests only, and the total comes from callgrind's output at exit. Two
measurements per server:

- **per request**: 4 clients x 50 streamed requests whose reply is one token
  the mock upstream sends at once, as scenario (r);
- **per token**: 8 clients x 5 streamed requests of 120 tokens, 20 ms apart,
  less the same with 20 tokens, over the 4,000 tokens between them.

The server runs some 50 times slower under callgrind, so the per-token load
is light: each token is its own network read and write, as in (b). Counts
exclude the kernel's work (system calls cost the same per request in both
servers: see ``docs/performance.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.profiles import UpstreamProfile
from bench.scenarios import BASELINE
from bench.servers import Pinning, Running, run_target, run_upstream

VALGRIND_START_TIMEOUT = 180.0
_TOTAL = re.compile(r"^(?:summary|totals): (\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Load:
    """Streamed requests: ``clients`` at once, each sending ``requests`` in turn."""

    clients: int
    requests: int
    profile: UpstreamProfile

    @property
    def total(self) -> int:
        return self.clients * self.requests


PER_REQUEST = Load(clients=4, requests=50, profile=UpstreamProfile(0, 0, 1))
FEW_TOKENS = Load(clients=8, requests=5, profile=UpstreamProfile(20, 20, 20))
MANY_TOKENS = Load(clients=8, requests=5, profile=UpstreamProfile(20, 20, 120))


def count(target: str, load: Load, *, source: Path | None = None) -> int:
    """Instructions ``target`` executes serving ``load`` (after a warm-up of the same load)."""
    callgrind = shutil.which("valgrind")
    control = shutil.which("callgrind_control")
    if callgrind is None or control is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    pinning = Pinning.detect()
    with tempfile.TemporaryDirectory(prefix="agenthost-instructions-") as tmp:
        workdir = Path(tmp)
        out = workdir / "callgrind.out"
        prefix = [
            callgrind,
            "--tool=callgrind",
            "--instr-atstart=no",  # switched on for the measured requests only
            f"--callgrind-out-file={out}",
        ]
        with (
            run_upstream(pinning, workdir) as upstream,
            run_target(
                target,
                upstream.url + load.profile.base_path,
                pinning,
                workdir,
                source=source,
                prefix=prefix,
                start_timeout=VALGRIND_START_TIMEOUT,
            ) as server,
        ):
            asyncio.run(_send(server, load))
            with _instrumented(control, server):
                asyncio.run(_send(server, load))
            _stop(server)
        text = "".join(path.read_text(errors="replace") for path in workdir.glob("callgrind.out*"))
    totals = [int(found) for found in _TOTAL.findall(text)]
    if not totals:
        raise RuntimeError(f"callgrind wrote no totals for {target}")
    return sum(totals)


@contextmanager
def _instrumented(control: str, server: Running) -> Iterator[None]:
    subprocess.run([control, "-i", "on", str(server.pid)], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run([control, "-i", "off", str(server.pid)], check=True, capture_output=True)


def _stop(server: Running) -> None:
    """Stop the server and wait for callgrind to write its counts (it is slow to exit)."""
    server.process.send_signal(signal.SIGINT)
    server.process.wait(timeout=VALGRIND_START_TIMEOUT)


async def _send(server: Running, load: Load) -> None:
    async with aiohttp.ClientSession() as session:

        async def client() -> None:
            for _ in range(load.requests):
                body = {"message": "hi"}
                async with session.post(f"{server.url}/chat/stream", json=body) as response:
                    data = await response.read()
                    if response.status != 200 or b"event: done" not in data:
                        raise RuntimeError(f"{server.name} answered {response.status}: {data!r}")

        await asyncio.gather(*(client() for _ in range(load.clients)))


def measure(target: str, *, source: Path | None = None) -> tuple[float, float]:
    """Thousands of instructions per request and per token."""
    per_request = count(target, PER_REQUEST, source=source) / PER_REQUEST.total / 1000
    few = count(target, FEW_TOKENS, source=source)
    many = count(target, MANY_TOKENS, source=source)
    tokens = MANY_TOKENS.total * (MANY_TOKENS.profile.tokens - FEW_TOKENS.profile.tokens)
    return per_request, (many - few) / tokens / 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default=f"agenthost,{BASELINE}")
    parser.add_argument("--source", type=Path, help="count the agenthost package in this dir")
    args = parser.parse_args(argv)
    targets = args.targets.split(",")
    results = {}
    for target in targets:
        source = args.source if target == "agenthost" else None
        results[target] = measure(target, source=source)
        per_request, per_token = results[target]
        print(f"{target}: {per_request:,.0f}k per request, {per_token:.1f}k per token")
    print("\n| server | k instructions / request | k instructions / token |")
    print("|---|---:|---:|")
    for target, (per_request, per_token) in results.items():
        print(f"| {target} | {per_request:,.0f} | {per_token:.1f} |")
    if "agenthost" in results and BASELINE in results:
        ours, theirs = results["agenthost"], results[BASELINE]
        print(
            f"\nagenthost / {BASELINE}: per request x{ours[0] / theirs[0]:.2f}, "
            f"per token x{ours[1] / theirs[1]:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
