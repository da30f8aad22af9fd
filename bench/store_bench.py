"""Store benchmark: does a turn, a window read or a listing slow down as data grows?

    python -m bench.store_bench [--backends memory,sqlite,postgres,redis] [--check]

For each backend it times, at 10, 1,000 and 10,000 messages in one session:
appending a turn (``begin_turn`` + ``complete_turn``: the user's message, then
the reply) and reading a context window (the newest 10 messages that fit the
budget); then listing a page of an owner's sessions with 1,000 and with
100,000 sessions stored. Each figure is the median of many runs, in
milliseconds. The ratio columns should stay near 1: cost must not grow with
history (``--check`` exits 1 if 10,000 vs 10 is above 1.5x).

PostgreSQL gets a scratch database and Redis a scratch key prefix, both removed
afterwards; SQLite runs in a temporary directory. A backend whose server is not
running is skipped with a note. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agenthost.errors import StoreUnavailableError
from agenthost.messages import Message, Usage
from agenthost.stores import NewMessage, SessionId, Store, open_store
from bench.store_seed import owners, seed_sessions, seed_start

SIZES = (10, 1_000, 10_000)
SESSION_COUNTS = (1_000, 100_000)
TOKENS_PER_MESSAGE = 20
WINDOW = 10  # messages: the budget below fits exactly this many
FILL_BATCH = 500
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/0"
TEXT = "The quick brown fox jumps over the lazy dog; " * 4


@dataclass
class Result:
    backend: str
    append_ms: dict[int, float] = field(default_factory=dict)
    window_ms: dict[int, float] = field(default_factory=dict)
    list_ms: dict[int, float] = field(default_factory=dict)
    note: str = ""


async def timed_ms(operation: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await operation()
    return (time.perf_counter() - start) * 1000


def message(index: int) -> NewMessage:
    text = f"{index}: {TEXT}"
    reply = Message.user(text) if index % 2 == 0 else Message.assistant(text)
    return NewMessage(reply, TOKENS_PER_MESSAGE)


async def fill(store: Store, session_id: SessionId, count: int) -> None:
    """Grow a session to ``count`` messages, a few hundred per turn."""
    lease = await store.acquire_lease(session_id, "bench-fill", timedelta(minutes=10))
    done = (await store.get_session(session_id)).message_count
    while done < count:
        batch = min(FILL_BATCH, count - done)
        started = await store.begin_turn(session_id, message(done), lease=lease, model="bench")
        rest = [message(done + i) for i in range(1, batch)]
        await store.complete_turn(started.run.id, rest, usage=Usage(1, 1))
        done += batch
    await store.release_lease(lease)


async def history_costs(store: Store, result: Result, repeat: int) -> None:
    """Time the sizes in turns, round by round, so that load on the machine hits all alike."""
    sessions = {}
    for size in SIZES:
        sessions[size] = (await store.create_session(owner=None, agent="bench")).id
        await fill(store, sessions[size], size)
    leases = {
        size: await store.acquire_lease(sid, "bench", timedelta(hours=1))
        for size, sid in sessions.items()
    }

    async def window(size: int) -> None:
        found = await store.read_window(
            sessions[size], budget_tokens=WINDOW * TOKENS_PER_MESSAGE, max_messages=200
        )
        assert len(found) == WINDOW

    async def append(size: int) -> None:
        sid = sessions[size]
        started = await store.begin_turn(sid, message(0), lease=leases[size], model="bench")
        await store.complete_turn(started.run.id, [message(1)], usage=Usage(20, 20))

    windows: dict[int, list[float]] = {size: [] for size in SIZES}
    appends: dict[int, list[float]] = {size: [] for size in SIZES}
    for _ in range(repeat):
        for size in SIZES:
            windows[size].append(await timed_ms(lambda size=size: window(size)))  # type: ignore[misc]
            appends[size].append(await timed_ms(lambda size=size: append(size)))  # type: ignore[misc]
    result.window_ms = {size: statistics.median(t) for size, t in windows.items()}
    result.append_ms = {size: statistics.median(t) for size, t in appends.items()}


async def listing_costs(stores: dict[int, tuple[Store, str]], result: Result, repeat: int) -> None:
    """List a page of one owner's sessions, and the next page, in stores of each size."""
    owner_ids = owners(10)
    for count, (store, url) in stores.items():
        await seed_sessions(store, url, count, owner_ids, seed_start())

    async def list_pages(store: Store) -> None:
        page = await store.list_sessions(owner=owner_ids[7], limit=20)
        await store.list_sessions(owner=owner_ids[7], limit=20, cursor=page.next_cursor)

    timings: dict[int, list[float]] = {count: [] for count in stores}
    for _ in range(repeat):
        for count, (store, _) in stores.items():
            timings[count].append(await timed_ms(lambda store=store: list_pages(store)) / 2)  # type: ignore[misc]
    result.list_ms = {count: statistics.median(t) for count, t in timings.items()}


@asynccontextmanager
async def scratch_url(backend: str, workdir: Path) -> AsyncIterator[str]:
    match backend:
        case "memory":
            yield "memory://"
        case "sqlite":
            yield f"sqlite:///{workdir / 'agenthost.db'}"
        case "postgres":
            import asyncpg

            name = f"agenthost_bench_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(POSTGRES_ADMIN)
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
                yield POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()
        case "redis":
            import redis.asyncio as aioredis

            prefix = f"agenthost-bench-{uuid.uuid4().hex[:8]}"
            try:
                yield f"{REDIS}?prefix={prefix}"
            finally:
                client = aioredis.Redis.from_url(REDIS)
                keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=5000)]
                for first in range(0, len(keys), 1000):
                    await client.unlink(*keys[first : first + 1000])
                await client.aclose()
        case _:
            raise ValueError(f"unknown backend {backend!r}")


async def bench(backend: str, repeat: int) -> Result:
    result = Result(backend)
    with tempfile.TemporaryDirectory() as workdir:
        try:
            async with AsyncExitStack() as stack:
                urls = [
                    await stack.enter_async_context(scratch_url(backend, Path(workdir) / str(n)))
                    for n in SESSION_COUNTS
                ]
                stores = {
                    count: (await stack.enter_async_context(open_store(url)), url)
                    for count, url in zip(SESSION_COUNTS, urls, strict=True)
                }
                await history_costs(stores[SESSION_COUNTS[0]][0], result, repeat)
                await listing_costs(stores, result, repeat)
        except (StoreUnavailableError, OSError) as error:
            result.note = f"skipped: {error}"
    return result


def cpu() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next(
            line.split(":", 1)[1].strip() for line in info.splitlines() if "model name" in line
        )
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} CPUs"


def ratio(values: dict[int, float], high: int, low: int) -> float:
    return values[high] / values[low] if values.get(low) else float("nan")


def report(results: list[Result]) -> bool:
    """Print the tables; ``True`` when every 10,000-vs-10 ratio is within 1.5x."""
    print(f"agenthost store benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"{platform.platform()}, Python {platform.python_version()}, {cpu()}")
    print("\nmedian milliseconds per operation, by messages in the session")
    print(f"{'backend':<9} {'operation':<12}" + "".join(f"{n:>10,}" for n in SIZES) + "  10k/10")
    flat = True
    for r in results:
        if r.note:
            print(f"{r.backend:<9} {r.note}")
            continue
        for name, values in (("append turn", r.append_ms), ("read window", r.window_ms)):
            k = ratio(values, 10_000, 10)
            flat &= k <= 1.5
            cells = "".join(f"{values[n]:>10.3f}" for n in SIZES)
            print(f"{r.backend:<9} {name:<12}{cells}  {k:5.2f}x{'' if k <= 1.5 else '  (!)'}")
    print("\nmedian milliseconds to list a page of 20 sessions, by sessions stored")
    print(f"{'backend':<9} " + "".join(f"{n:>12,}" for n in SESSION_COUNTS) + "  100k/1k")
    for r in results:
        if not r.note:
            cells = "".join(f"{r.list_ms[n]:>12.3f}" for n in SESSION_COUNTS)
            print(f"{r.backend:<9} {cells}  {ratio(r.list_ms, 100_000, 1_000):5.2f}x")
    return flat


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="memory,sqlite,postgres,redis")
    parser.add_argument("--repeat", type=int, default=200, help="timed runs per figure")
    parser.add_argument("--check", action="store_true", help="exit 1 if a ratio exceeds 1.5x")
    args = parser.parse_args()
    results = []
    for backend in args.backends.split(","):
        print(f"benchmarking {backend} ...", file=sys.stderr, flush=True)
        results.append(await bench(backend.strip(), args.repeat))
    flat = report(results)
    return 1 if args.check and not flat else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
