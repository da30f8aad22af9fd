"""The load generator, its own process: ``python -m bench.loadgen --port N --clients C ...``.

``C`` clients, each on its own keep-alive connection, send requests back to
back (their first requests spread over ``--ramp`` seconds) and stop after the
warm-up and the measured window; what happened inside the window is printed
as one JSON object. With ``--once`` each client sends one request and the
window is the whole run (the many-streams check).

Added time to first token is the time from sending the request to the first
token, less the upstream's own time to first token; for whole (non-streamed)
replies it is the time to the whole reply less the upstream's. Server CPU is
read from ``/proc`` at both ends of the window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import time
from collections import Counter
from dataclasses import dataclass, field

import uvloop

from bench.client import Connection, Expected, RequestResult, build_request
from bench.profiles import UpstreamProfile
from bench.system import core_busy_seconds, raise_open_files_limit, tree_cpu_seconds


@dataclass
class Tally:
    """What the clients saw inside the window ``[start, end]``."""

    start: float
    end: float
    expected_seconds: float
    streaming: bool
    tokens: int = 0
    requests: int = 0
    added: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0

    def add(self, result: RequestResult) -> None:
        self.sent += 1
        if result.error is not None:
            self.errors[result.error[:100]] += 1
        times = result.token_times
        start, end = self.start, self.end
        previous: float | None = None
        for t in times:
            if start <= t <= end:
                self.tokens += 1
                if previous is not None:
                    self.gaps.append(t - previous)
            previous = t
        if result.error is None and result.done is not None and start <= result.done <= end:
            self.requests += 1
            if not self.streaming:
                self.added.append(result.done - result.sent - self.expected_seconds)
        if self.streaming and times and start <= times[0] <= end:
            self.added.append(times[0] - result.sent - self.expected_seconds)


@dataclass(frozen=True)
class Snapshot:
    """CPU counters at one instant."""

    wall: float
    server: float
    upstream: float
    own: float
    cores: tuple[float | None, ...]

    @classmethod
    def take(cls, server_pid: int, upstream_pid: int | None) -> Snapshot:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return cls(
            wall=time.monotonic(),
            server=tree_cpu_seconds(server_pid) if server_pid else 0.0,
            upstream=tree_cpu_seconds(upstream_pid) if upstream_pid else 0.0,
            own=usage.ru_utime + usage.ru_stime,
            cores=(core_busy_seconds(0), core_busy_seconds(1)),
        )


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100), or None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


class LoadRun:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.profile = UpstreamProfile(args.ttft_ms, args.gap_ms, args.tokens)
        self.streaming = args.path.endswith("/stream")
        self.expected = Expected.of(args.tokens)
        self.raw = build_request(args.host, args.port, args.path, {"message": args.message})
        self.inflight = 0
        self.peak_inflight = 0
        self.results: list[RequestResult] = []
        self.stop_at = math.inf

    async def run(self) -> dict[str, object]:
        args = self.args
        t0 = time.monotonic()
        once = args.once
        start = t0 if once else t0 + args.warmup
        self.stop_at = math.inf if once else start + args.duration
        before: Snapshot | None = None
        if once:
            before = Snapshot.take(args.server_pid, args.upstream_pid)
        tasks = [
            asyncio.create_task(self._client(t0 + args.ramp * i / args.clients))
            for i in range(args.clients)
        ]
        if not once:
            await asyncio.sleep(max(0.0, start - time.monotonic()))
            before = Snapshot.take(args.server_pid, args.upstream_pid)
            await asyncio.sleep(max(0.0, self.stop_at - time.monotonic()))
            after = Snapshot.take(args.server_pid, args.upstream_pid)
        grace = args.timeout if once else 2 * self.profile.reply_seconds + 5
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if once:
            after = Snapshot.take(args.server_pid, args.upstream_pid)
        end = time.monotonic() if once else self.stop_at
        assert before is not None
        return self._summary(start, end, before, after, unfinished=len(pending))

    async def _client(self, start_at: float) -> None:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        connection: Connection | None = None
        sent = 0
        try:
            while time.monotonic() < self.stop_at and not (self.args.once and sent):
                if connection is None or connection.closed:
                    connection = await self._connect()
                    if connection is None:
                        await asyncio.sleep(0.1)
                        continue
                sent += 1
                self.inflight += 1
                self.peak_inflight = max(self.peak_inflight, self.inflight)
                try:
                    result = await asyncio.wait_for(
                        connection.request(self.raw), self.args.request_timeout
                    )
                except TimeoutError:
                    result = RequestResult(sent=time.monotonic(), error="timed out")
                    connection.close()
                finally:
                    self.inflight -= 1
                self.results.append(result)
        finally:
            if connection is not None:
                connection.close()

    async def _connect(self) -> Connection | None:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await loop.create_connection(
                lambda: Connection(self.expected, streaming=self.streaming),
                self.args.host,
                self.args.port,
            )
        except OSError as exc:
            self.results.append(RequestResult(sent=time.monotonic(), error=f"connect: {exc}"))
            return None
        return protocol

    def _summary(
        self, start: float, end: float, before: Snapshot, after: Snapshot, *, unfinished: int
    ) -> dict[str, object]:
        profile = self.profile
        expected = profile.ttft_ms / 1000 if self.streaming else profile.reply_seconds
        tally = Tally(start, end, expected, self.streaming)
        for result in self.results:
            tally.add(result)
        seconds = max(end - start, 1e-9)
        wall = max(after.wall - before.wall, 1e-9)
        server_cpu = after.server - before.server
        offered = None
        if profile.reply_seconds > 0 and not self.args.once:
            offered = self.args.clients * profile.tokens / profile.reply_seconds
        tokens_per_s = tally.tokens / seconds
        return {
            "clients": self.args.clients,
            "seconds": round(seconds, 3),
            "sent": tally.sent,
            "requests": tally.requests,
            "requests_per_s": round(tally.requests / seconds, 2),
            "tokens": tally.tokens,
            "tokens_expected": tally.sent * profile.tokens,
            "tokens_per_s": round(tokens_per_s, 1),
            "offered_tokens_per_s": None if offered is None else round(offered, 1),
            "delivered": None if offered is None else round(tokens_per_s / offered, 4),
            "server_cpu_ms_per_1k_tokens": (
                round(server_cpu * 1000 / tally.tokens * 1000, 2) if tally.tokens else None
            ),
            "server_cpu_pct": round(100 * server_cpu / wall, 1),
            "upstream_cpu_pct": round(100 * (after.upstream - before.upstream) / wall, 1),
            "loadgen_cpu_pct": round(100 * (after.own - before.own) / wall, 1),
            "core_busy_pct": [
                None if a is None or b is None else round(100 * (a - b) / wall, 1)
                for a, b in zip(after.cores, before.cores, strict=True)
            ],
            "added_ttft_p50_ms": _ms(percentile(tally.added, 50)),
            "added_ttft_p99_ms": _ms(percentile(tally.added, 99)),
            "gap_p50_ms": _ms(percentile(tally.gaps, 50)),
            "gap_p99_ms": _ms(percentile(tally.gaps, 99)),
            "errors": sum(tally.errors.values()),
            "error_kinds": dict(tally.errors.most_common(5)),
            "unfinished": unfinished,
            "peak_inflight": self.peak_inflight,
        }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/chat/stream", help="/chat/stream or /chat")
    parser.add_argument("--message", default="Say something.")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--ramp", type=float, default=1.0, help="spread of the first requests")
    parser.add_argument("--once", action="store_true", help="one request per client")
    parser.add_argument("--timeout", type=float, default=120.0, help="--once: wait this long")
    parser.add_argument("--request-timeout", type=float, default=60.0)
    parser.add_argument("--ttft-ms", type=int, required=True, help="the upstream's profile")
    parser.add_argument("--gap-ms", type=int, required=True)
    parser.add_argument("--tokens", type=int, required=True)
    parser.add_argument("--server-pid", type=int, default=0)
    parser.add_argument("--upstream-pid", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    raise_open_files_limit()
    summary = uvloop.run(LoadRun(args).run())
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
