"""Where a server's CPU goes under one scenario: ``python -m bench.profiling --scenario a``.

Runs the scenario's load against one server (agenthost by default) as ``make
bench`` does, samples the server with py-spy (``bench/requirements.txt``;
non-blocking, so the server runs at its own pace) while the load runs, and
prints the functions of the event-loop thread by own time and by time
including callees. The raw samples are kept for flame graphs
(``flamegraph.pl`` or speedscope).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from bench.run import run_load
from bench.scenarios import ALL_SCENARIOS, MANY_STREAMS, TARGETS
from bench.servers import Pinning, run_target, run_upstream
from bench.system import raise_open_files_limit

_LINE = re.compile(r":\d+\)$")
EVENT_LOOP_FRAME = "Runner.run"


def py_spy() -> str:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("py-spy is not installed: pip install -r bench/requirements.txt")
    return found


def summarise(raw: Path, *, top: int = 40, thread_frame: str = EVENT_LOOP_FRAME) -> str:
    """Own and inclusive shares of the samples whose stack holds ``thread_frame``."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if thread_frame not in stack:
            continue
        n = int(count)
        total += n
        frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return "no samples"
    lines = [f"{total} samples of the event-loop thread", "", "own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines += ["", "including callees:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top * 2)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="a", help="a, b, c, d, t, r or many")
    parser.add_argument("--target", default="agenthost", choices=TARGETS)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--source", type=Path, help="profile the agenthost package in this dir")
    parser.add_argument(
        "--native",
        action="store_true",
        help="sample C frames too (pauses the server at each sample)",
    )
    args = parser.parse_args(argv)
    scenarios = {s.key: s for s in (*ALL_SCENARIOS, MANY_STREAMS)}
    scenario = scenarios[args.scenario]
    spy = py_spy()
    raise_open_files_limit()
    pinning = Pinning.detect()
    args.out.mkdir(parents=True, exist_ok=True)
    raw = args.out / f"profile-{args.target}-{scenario.key}.txt"
    warmup = 2.0
    with tempfile.TemporaryDirectory(prefix="agenthost-profile-") as tmp:
        workdir = Path(tmp)
        with run_upstream(pinning, workdir) as upstream:
            base = upstream.url + scenario.profile.base_path
            with run_target(args.target, base, pinning, workdir, source=args.source) as server:
                command = [
                    *pinning.command(pinning.harness, [spy]),
                    "record",
                    "--pid",
                    str(server.pid),
                    "--rate",
                    str(args.rate),
                    "--duration",
                    str(int(args.duration)),
                    *(["--native"] if args.native else ["--nonblocking"]),
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                ]
                spied: list[subprocess.CompletedProcess[str]] = []

                def spy_on() -> None:
                    spied.append(
                        subprocess.run(command, check=False, capture_output=True, text=True)
                    )

                timer = threading.Timer(warmup, spy_on)
                timer.start()
                record = run_load(
                    scenario, server, upstream, pinning, warmup=warmup, duration=args.duration
                )
                timer.join()
    print({k: record[k] for k in ("tokens_per_s", "server_cpu_ms_per_1k_tokens", "errors")})
    if not raw.exists():
        errors = spied[0].stderr.strip() if spied else "it did not run"
        raise SystemExit(f"py-spy recorded nothing: {errors}")
    print(f"raw samples: {raw}\n")
    print(summarise(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
