"""``RedisRunEventLog``: run events that any replica can follow, through Redis streams.

Each run's events stay in the process that runs it (a ``MemoryRunEventLog``,
the fast path for clients connected to that process) and are mirrored to a
Redis stream, one per run, so a client that reconnects through another worker
or replica can resume there. Appending stays O(1) and never waits: events are
queued and written by a background flusher in pipelined batches (a batch every
few milliseconds under load, at once when a run ends), so the per-token path
has no network round trip. A run's stream expires ``retention`` seconds after
its final event (and, as a safety net, ``max_age`` seconds after it started).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

from agenthost.errors import RunNotFoundError
from agenthost.runs.events import EventKind, RunEvent
from agenthost.runs.log import MemoryRunEventLog

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

KEY_PREFIX = "agenthost:run-events:"
FLUSH_INTERVAL = 0.005
BATCH = 512


class RedisRunEventLog:
    def __init__(
        self,
        url: str,
        *,
        retention: float,
        max_age: float,
        local: MemoryRunEventLog | None = None,
    ) -> None:
        from redis.asyncio import Redis

        self._redis: Redis = Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._local = local or MemoryRunEventLog(retention=retention)
        self._retention = int(max(1, retention))
        self._max_age = int(max(self._retention, max_age))
        self._queue: list[tuple[str, RunEvent]] = []
        self._wakeup = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    def open(self, run_id: str) -> None:
        self._local.open(run_id)

    def append(self, run_id: str, event: RunEvent) -> None:
        self._local.append(run_id, event)
        self._queue.append((run_id, event))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_forever(), name="run event flusher")
        if event.final or len(self._queue) >= BATCH:
            self._wakeup.set()

    def knows(self, run_id: str) -> bool:
        return self._local.knows(run_id)

    async def locate(self, run_id: str) -> bool:
        if self._local.knows(run_id):
            return True
        return bool(await self._redis.exists(KEY_PREFIX + run_id))

    def follow(
        self, run_id: str, *, after: int = 0, idle_timeout: float | None = None
    ) -> AsyncIterator[RunEvent | None]:
        if self._local.knows(run_id):  # the in-process follower, with its shortcuts
            return self._local.follow(run_id, after=after, idle_timeout=idle_timeout)
        return self._follow_remote(run_id, after, idle_timeout)

    async def aclose(self) -> None:
        if self._flusher is not None:
            self._wakeup.set()
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self._flush()
        await self._redis.aclose()

    async def _flush_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_INTERVAL):
                    await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self._flush()
            except Exception:  # Redis down: local followers still get everything
                logger.warning("could not mirror run events to Redis", exc_info=True)

    async def _flush(self) -> None:
        if not self._queue:
            return
        batch, self._queue = self._queue, []
        async with self._redis.pipeline(transaction=False) as pipe:
            started: set[str] = set()
            for run_id, event in batch:
                key = KEY_PREFIX + run_id
                fields = {"seq": event.seq, "kind": event.kind, "data": event.data}
                pipe.xadd(key, fields)  # type: ignore[arg-type]
                if event.seq <= 2 and run_id not in started:
                    started.add(run_id)
                    pipe.expire(key, self._max_age)
                if event.final:
                    pipe.expire(key, self._retention)
            await pipe.execute()

    async def _follow_remote(
        self, run_id: str, after: int, idle_timeout: float | None
    ) -> AsyncIterator[RunEvent | None]:
        key = KEY_PREFIX + run_id
        if not await self._redis.exists(key):
            raise RunNotFoundError()
        cursor = "0-0"
        block_ms = int((idle_timeout or 15.0) * 1000)
        while True:
            reply: object = await self._redis.xread({key: cursor}, count=BATCH, block=block_ms)
            entries = _entries(reply)
            if not entries:
                if not await self._redis.exists(key):
                    return  # expired while we waited
                yield None
                continue
            for entry_id, fields in entries:
                cursor = entry_id
                event = _decode(fields)
                if event.seq <= after:
                    continue
                yield event
                if event.final:
                    return


def _entries(reply: object) -> list[tuple[str, dict[bytes, bytes]]]:
    """The (id, fields) entries of an XREAD reply, in RESP2's list or RESP3's map shape."""
    if not reply:
        return []
    streams: list[Any] = (
        list(reply.values())
        if isinstance(reply, dict)
        else [item[1] for item in cast(list[Any], reply)]
    )
    return [
        (entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id), fields)
        for entries in streams
        for entry_id, fields in entries
    ]


def _decode(fields: dict[bytes, bytes]) -> RunEvent:
    kind: EventKind = fields[b"kind"].decode()  # type: ignore[assignment]
    return RunEvent(int(fields[b"seq"]), kind, fields[b"data"].decode())
