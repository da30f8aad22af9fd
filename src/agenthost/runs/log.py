"""The run event log: where a run's events go, and where clients follow them from.

The run appends events as they happen; any number of followers read them from
any point (``after`` the last seq they saw), get everything already there at
once, then wait for more, until the final event. A finished run's log stays
readable for ``retention`` seconds, so a client that lost its connection near
the end can still resume. The in-process log serves one process; a shared log
(Redis) lets a client resume on another worker or replica.

Appending is the per-token path: it must stay O(1) and never wait on I/O.
"""

from __future__ import annotations

import asyncio
from array import array
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, overload

from agenthost.clock import Clock, SystemClock
from agenthost.errors import RunNotFoundError
from agenthost.runs.events import FINAL_KINDS, EventKind, RunEvent
from agenthost.step_timer import StepTimer

DEFAULT_RETENTION_SECONDS = 900.0
DEFAULT_MAX_RUNS = 10_000


class RunEventLog(Protocol):
    def open(self, run_id: str) -> None:
        """Start a run's log (appending to an unknown run is an error)."""
        ...

    def append(self, run_id: str, event: RunEvent) -> None:
        """Add an event; a final event (done, error) closes the log."""
        ...

    def follow(
        self, run_id: str, *, after: int = 0, idle_timeout: float | None = None
    ) -> AsyncIterator[RunEvent | None]:
        """Events after ``after``, then live ones, until the final event.

        Yields ``None`` whenever ``idle_timeout`` seconds pass with nothing new
        (so a server can send a keep-alive). ``RunNotFoundError`` for a run that
        is not (or no longer) in the log.
        """
        ...

    def knows(self, run_id: str) -> bool:
        """Whether this process has the run's events."""
        ...

    async def locate(self, run_id: str) -> bool:
        """Whether the run's events can be followed from here (a shared log: any process's)."""
        ...

    async def aclose(self) -> None: ...


class EventSink(Protocol):
    def push(self, event: RunEvent) -> None:
        """Take an event as it is appended, in the appending task; must not raise."""
        ...


class ClosedEvents(Sequence[RunEvent]):
    """A closed run's events, held in three flat columns: seqs, kinds and texts.

    A process keeps every closed run for the retention time. As ``RunEvent``
    objects (or a tuple per event), each event was an object the cyclic garbage
    collector tracks: 10,000 retained runs of 50 events made each full
    collection walk half a million objects (a 50 ms pause of the whole server),
    and the stream of new ones set off a young collection every second under
    load. Here a run's events are three objects. Reading gives ``RunEvent``s,
    made on demand.
    """

    __slots__ = ("_data", "_kinds", "_seqs")

    def __init__(self, events: Sequence[RunEvent]) -> None:
        self._seqs = array("q", [event.seq for event in events])
        self._kinds: tuple[EventKind, ...] = tuple([event.kind for event in events])
        self._data = tuple([event.data for event in events])

    def __len__(self) -> int:
        return len(self._seqs)

    @overload
    def __getitem__(self, index: int) -> RunEvent: ...

    @overload
    def __getitem__(self, index: slice) -> list[RunEvent]: ...

    def __getitem__(self, index: int | slice) -> RunEvent | list[RunEvent]:
        if isinstance(index, slice):
            columns = zip(self._seqs[index], self._kinds[index], self._data[index], strict=True)
            return [RunEvent(seq, kind, data) for seq, kind, data in columns]
        return RunEvent(self._seqs[index], self._kinds[index], self._data[index])


@dataclass
class _Entry:
    events: list[RunEvent] | ClosedEvents = field(default_factory=list)
    # One future per waiting follower: a follower that is cancelled cancels only its own.
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    # Followers that take each event as it is appended (``LogFollower.attach``).
    sinks: list[EventSink] = field(default_factory=list)
    closed_at: float | None = None


class MemoryRunEventLog:
    """The run event log of one process."""

    def __init__(
        self,
        *,
        retention: float = DEFAULT_RETENTION_SECONDS,
        max_runs: int = DEFAULT_MAX_RUNS,
        clock: Clock | None = None,
    ) -> None:
        self._entries: dict[str, _Entry] = {}
        self._closed: OrderedDict[str, float] = OrderedDict()  # in the order they closed
        self._retention = retention
        self._max_runs = max_runs
        self._clock = clock or SystemClock()

    def open(self, run_id: str) -> None:
        self._evict()
        self._entries[run_id] = _Entry()

    def knows(self, run_id: str) -> bool:
        self._evict()
        return run_id in self._entries

    async def locate(self, run_id: str) -> bool:
        return self.knows(run_id)

    async def aclose(self) -> None:
        self._entries.clear()

    def append(self, run_id: str, event: RunEvent) -> None:
        entry = self._entries[run_id]
        events = entry.events
        if entry.closed_at is not None or not isinstance(events, list):
            raise RuntimeError(f"run {run_id} is already closed")
        events.append(event)
        if event.kind in FINAL_KINDS:  # ``event.final``, without a property call per token
            entry.closed_at = self._clock.monotonic()
            self._closed[run_id] = entry.closed_at
            entry.events = ClosedEvents(events)
        if entry.waiters:
            for waiter in entry.waiters:
                if not waiter.done():
                    waiter.set_result(None)
            entry.waiters.clear()
        if entry.sinks:
            for sink in tuple(entry.sinks):
                sink.push(event)

    def follow(
        self, run_id: str, *, after: int = 0, idle_timeout: float | None = None
    ) -> LogFollower:
        return LogFollower(self, run_id, after, idle_timeout)

    def _entry(self, run_id: str) -> _Entry:
        entry = self._entries.get(run_id) if self.knows(run_id) else None
        if entry is None:
            raise RunNotFoundError()
        return entry

    def _evict(self) -> None:
        """Forget closed runs past their retention, and the oldest closed ones over the cap."""
        now = self._clock.monotonic()
        while self._closed:
            run_id, closed_at = next(iter(self._closed.items()))
            if now - closed_at <= self._retention and len(self._entries) <= self._max_runs:
                return
            del self._closed[run_id]
            self._entries.pop(run_id, None)


class LogFollower:
    """One follower of a run in the in-process log (what ``follow`` returns).

    Besides iterating, ``ready()`` takes every event already in the log without
    waiting, so a response can send all of them in one write per wake-up
    instead of one per event; and once caught up, ``attach`` has the log push
    each new event to a sink in the appending task, which saves the follower's
    task a wake-up per event (``server.sse``). A run not in the log raises
    ``RunNotFoundError`` on the first step, as a generator would.
    """

    def __init__(
        self, log: MemoryRunEventLog, run_id: str, after: int, idle_timeout: float | None
    ) -> None:
        self._log = log
        self._run_id = run_id
        self._after = after
        self._idle_timeout = idle_timeout
        self._entry: _Entry | None = None
        self._index = 0
        self._finished = False
        # One timer for the follower's idle pings, not one per wait (one wait per event).
        self._idle = StepTimer()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __aiter__(self) -> LogFollower:
        return self

    async def __anext__(self) -> RunEvent | None:
        entry = self._entry
        if entry is None:
            entry = self._entry = self._log._entry(self._run_id)
            self._index = _first_after(entry.events, self._after)
        while not self._finished:
            if self._index < len(entry.events):
                event = entry.events[self._index]
                self._index += 1
                self._finished = event.final
                return event
            if entry.closed_at is not None:
                break
            if self._loop is None:  # once: each lookup is a system call on Python 3.11
                self._loop = asyncio.get_running_loop()
            waiter = self._loop.create_future()
            entry.waiters.append(waiter)
            if self._idle_timeout is None:
                await waiter
                continue
            try:
                await self._idle.wait(waiter, self._idle_timeout)
            except TimeoutError:
                if not self._idle.expired:
                    raise
                return None
        self._finished = True
        self._idle.close()
        raise StopAsyncIteration

    @property
    def idle_timeout(self) -> float | None:
        return self._idle_timeout

    def attach(self, sink: EventSink) -> bool:
        """Have each event appended from now on pushed to ``sink``, which must ``take`` it.

        False (nothing attached) unless the follower has started and has read
        every event so far of a run that is still open.
        """
        entry = self._entry
        if (
            entry is None
            or self._finished
            or entry.closed_at is not None
            or self._index != len(entry.events)
        ):
            return False
        entry.sinks.append(sink)
        return True

    def detach(self, sink: EventSink) -> None:
        if self._entry is not None and sink in self._entry.sinks:
            self._entry.sinks.remove(sink)

    def take(self, event: RunEvent) -> bool:
        """Count ``event``, just appended, as read; False if events before it are unread."""
        entry = self._entry
        if entry is None or self._index != len(entry.events) - 1 or entry.events[-1] is not event:
            return False
        self._index += 1
        self._finished = event.kind in FINAL_KINDS
        return True

    def ready(self) -> list[RunEvent]:
        """The events after the last one returned that are already in the log, taken now."""
        entry = self._entry
        if entry is None or self._finished or self._index >= len(entry.events):
            return []
        # Nothing follows a final event: the log closes on it.
        batch = entry.events[self._index :]
        self._index += len(batch)
        self._finished = batch[-1].final
        return batch


def _first_after(events: Sequence[RunEvent], after: int) -> int:
    """Index of the first event with seq > after (seqs are 1, 2, 3, ...)."""
    return max(0, min(after, len(events)))
