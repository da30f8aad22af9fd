"""``make bench``: agenthost against bare relays, every scenario, several rounds, then the verdict.

    python -m bench.run [--rounds 3] [--duration 10] [--scenarios a,b,c,d] [--json out.json]

One mock upstream runs for the whole benchmark. For each round, scenario and
server (in an order that rotates from round to round, so drift does not
always favour the same server) a fresh server is started on its own core, the
load generator runs against it in its own process, and the server is
stopped. Then agenthost (and the aiohttp relay, for reference) is given 2,000
streams at once. Everything is printed as Markdown tables of medians.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import report
from bench.scenarios import ALL_SCENARIOS, BASELINE, MANY_STREAMS, TARGETS, Scenario
from bench.servers import HOST, REPO, Pinning, Running, run_target, run_upstream, tail
from bench.system import cpu_model, memory_gib, raise_open_files_limit


def run_load(
    scenario: Scenario,
    server: Running,
    upstream: Running,
    pinning: Pinning,
    *,
    warmup: float,
    duration: float,
) -> report.Record:
    profile = scenario.profile
    argv = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--host",
        HOST,
        "--port",
        str(server.port),
        "--path",
        scenario.path,
        "--clients",
        str(scenario.clients),
        "--warmup",
        str(warmup),
        "--duration",
        str(duration),
        "--ramp",
        str(scenario.ramp),
        "--ttft-ms",
        str(profile.ttft_ms),
        "--gap-ms",
        str(profile.gap_ms),
        "--tokens",
        str(profile.tokens),
        "--server-pid",
        str(server.pid),
        "--upstream-pid",
        str(upstream.pid),
    ]
    if scenario.once:
        argv += ["--once", "--timeout", "180", "--request-timeout", "170"]
    done = subprocess.run(
        pinning.command(pinning.harness, argv),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{done.stderr[-3000:]}")
    record: report.Record = json.loads(done.stdout.strip().splitlines()[-1])
    return record


def _line(record: report.Record) -> str:
    def get(key: str) -> str:
        value = record.get(key)
        return "-" if value is None else str(value)

    return (
        f"{get('tokens_per_s'):>8} tok/s  {get('server_cpu_ms_per_1k_tokens'):>7} CPU-ms/1k  "
        f"cpu {get('server_cpu_pct'):>5}%  ttft+ p50 {get('added_ttft_p50_ms'):>7} "
        f"p99 {get('added_ttft_p99_ms'):>7} ms  gap p99 {get('gap_p99_ms'):>6} ms  "
        f"errors {get('errors')}"
    )


def machine_description(pinning: Pinning) -> str:
    return (
        f"{dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; {os.cpu_count()} cores "
        f"({cpu_model()}), {memory_gib():.0f} GiB; Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; server on CPU {pinning.server or 'any'}, "
        f"upstream and load generator on CPU {pinning.harness or 'any'}"
    )


def code_description(source: Path | None) -> str:
    """Which agenthost is measured: its directory and, in a git checkout, its commit."""
    where = source or REPO / "src"
    git = ["git", "-C", str(where)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changes = subprocess.run(
            [*git, "status", "--porcelain", "--", "."], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"agenthost from {where}"
    return f"agenthost from {where} at {commit}" + (" with uncommitted changes" if changes else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument(
        "--scenarios", default="a,b,c,d", help="a, b, c, d; also t and r (cost per token, request)"
    )
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--no-many", action="store_true", help="skip the 2,000-stream check")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument(
        "--source",
        type=Path,
        help="benchmark the agenthost package in this directory (e.g. another checkout's src)",
    )
    args = parser.parse_args(argv)
    _stop_on_signals()
    raise_open_files_limit()
    pinning = Pinning.detect()
    scenarios = [s for s in ALL_SCENARIOS if s.key in args.scenarios.split(",")]
    targets = [t for t in TARGETS if t in args.targets.split(",")]
    print(
        f"# agenthost serving benchmark\n\n{machine_description(pinning)}; "
        f"{code_description(args.source)}\n",
        flush=True,
    )
    started = time.monotonic()
    records: list[report.Record] = []
    many: list[report.Record] = []
    with tempfile.TemporaryDirectory(prefix="agenthost-bench-") as tmp:
        workdir = Path(tmp)
        with run_upstream(pinning, workdir) as upstream:
            for round_ in range(1, args.rounds + 1):
                shift = (round_ - 1) % len(targets)
                order = targets[shift:] + targets[:shift]
                for scenario in scenarios:
                    for target in order:
                        record = _measure(target, scenario, upstream, pinning, workdir, args)
                        record.update(round=round_, target=target, scenario=scenario.key)
                        records.append(record)
                        print(
                            f"round {round_} ({scenario.key}) {target:<14} {_line(record)}",
                            flush=True,
                        )
            if not args.no_many:
                for target in [t for t in ("agenthost", BASELINE) if t in targets]:
                    record = _measure(target, MANY_STREAMS, upstream, pinning, workdir, args)
                    record.update(round=1, target=target, scenario=MANY_STREAMS.key)
                    many.append(record)
                    print(f"many-streams {target:<14} {_line(record)}", flush=True)
    minutes = (time.monotonic() - started) / 60
    print(f"\n(measured in {minutes:.1f} minutes)\n\n" + report.render(records, many), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"runs": records, "many": many}, indent=1))
    return 0


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM stop the benchmark and every process it started.

    A shell starts background jobs with SIGINT ignored; the servers are stopped
    by the ``finally`` blocks this exception runs through.
    """

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _measure(
    target: str,
    scenario: Scenario,
    upstream: Running,
    pinning: Pinning,
    workdir: Path,
    args: argparse.Namespace,
) -> report.Record:
    base = upstream.url + scenario.profile.base_path
    with run_target(target, base, pinning, workdir, source=args.source) as server:
        try:
            return run_load(
                scenario, server, upstream, pinning, warmup=args.warmup, duration=args.duration
            )
        except RuntimeError:
            print(tail(server.log), file=sys.stderr)
            raise


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started is stopped", file=sys.stderr)
        sys.exit(130)
