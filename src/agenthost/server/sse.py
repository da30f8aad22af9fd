"""Server-Sent Events framing for run events.

Each event is ``id``, ``event`` and one ``data:`` line per line of its text, so
multi-line text survives exactly (the client joins ``data`` lines with LF), and
text that looks like framing (``data:``, ``event:``, a blank line) can never
start a new event: it is always behind a ``data: `` prefix. The text has no CR
(the run turned CR and CRLF into LF), and SSE strips only the one space after
``data:``, so leading spaces survive too.

Following a run of this process live, most events are written by the run's own
task as they happen (``DirectWriter``): the response's task sleeps meanwhile,
one task wake-up per event fewer on the busiest path of the server.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Generator
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from agenthost.runs.events import FINAL_KINDS, RunEvent
from agenthost.runs.log import LogFollower
from agenthost.server.access import BODY_SEND

PING = b": ping\n\n"
HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx: pass each event through at once
}
_KIND_PREFIX: dict[str, bytes] = {}


def frame(event: RunEvent) -> bytes:
    prefix = _KIND_PREFIX.get(event.kind)
    if prefix is None:
        prefix = _KIND_PREFIX.setdefault(event.kind, f"\nevent: {event.kind}\n".encode())
    data = event.data.replace("\n", "\ndata: ")
    return b"id: %d%sdata: %s\n\n" % (event.seq, prefix, data.encode())


class LastFrame(bytes):
    """The stream's last bytes: ``EventStreamResponse`` sends them with the end of the body."""


async def _frames(events: AsyncIterator[RunEvent | None], retry_ms: int) -> AsyncIterator[bytes]:
    # The retry hint goes out with the first event, and the final event with the end
    # of the body: each is one write (one system call) fewer per response.
    pending = b"retry: %d\n\n" % retry_ms
    # Following the in-process log, every event already there goes out with the one
    # that woke us, as one write: one send and one syscall per wake-up, not per event.
    ready = events.ready if isinstance(events, LogFollower) else None
    async for event in events:
        if event is None:
            data, final = PING, False
        else:
            more = ready() if ready is not None else None
            if more:
                data = b"".join([frame(event), *[frame(later) for later in more]])
                final = more[-1].final
            else:
                data, final = frame(event), event.final
        if pending:
            data, pending = pending + data, b""
        yield LastFrame(data) if final else data
    if pending:
        yield pending


def event_stream(
    events: AsyncIterator[RunEvent | None],
    *,
    retry_ms: int,
    headers: dict[str, str] | None = None,
) -> StreamingResponse:
    """A ``text/event-stream`` response; ``None`` items in ``events`` become pings."""
    return EventStreamResponse(
        _frames(events, retry_ms),
        media_type="text/event-stream; charset=utf-8",
        headers={**HEADERS, **(headers or {})},
        direct=DirectWriter(events) if isinstance(events, LogFollower) else None,
    )


class DirectWriter:
    """Writes a live run's events from the task that appends them, while the response sleeps.

    A response following a run would wake once per event: the log wakes its
    task, which frames the event and sends it. Once it has sent everything so
    far, it attaches a sink to the log instead, and each new event is framed as
    it is appended, in the run's task, and sent at once (or with the others of
    that turn of the loop: ``_Sink``). The response's task sleeps until
    the final event (which it sends itself, as the end of the body), an idle
    period (it sends a ping and attaches again), or a send that cannot finish
    at once (a client reading slower than the run writes fills the socket's
    buffer): the response's task finishes that send, and takes the events from
    there on, as without this writer.

    The events' bytes go to the server's own ``send`` (``BODY_SEND``), past
    every layer of the app: each of them wraps ``send`` to look at a response's
    start or end only, and passing every token through them was a few percent
    of the server's CPU. The start, the end and pings take the whole way.
    """

    def __init__(self, follower: LogFollower) -> None:
        self._follower = follower

    async def write(self, send: Send, body_send: Send, loop: asyncio.AbstractEventLoop) -> None:
        """Let the run's task send its events, until one it must not send.

        ``body_send`` takes the events' bytes, ``send`` the pings; ``loop`` is the running loop.
        """
        follower = self._follower
        while True:
            sink = _Sink(follower, body_send, loop)
            if not follower.attach(sink):
                return  # events to read first, or the run has ended
            try:
                idled = await sink.stopped(follower.idle_timeout)
                await sink.finish()
            finally:
                follower.detach(sink)
                sink.discard()
            if not idled:
                return
            await send({"type": "http.response.body", "body": PING, "more_body": True})


class _Sink:
    """One stretch of direct writes (see ``DirectWriter``).

    The first event appended in a turn of the event loop is written at once,
    within ``append``: tokens a model streams apart go out as they come, not
    after the rest of the loop's turn (under load, a turn is what the whole
    server does between two polls), and without a callback per token. Events
    appended later in the same turn (a model server that sent many tokens at
    once, in one network read) are joined and written at the end of that turn:
    one system call, not one per token, as in the response's own task
    (``ready``).
    """

    def __init__(self, follower: LogFollower, send: Send, loop: asyncio.AbstractEventLoop) -> None:
        self._follower = follower
        self._send = send
        self._loop = loop
        self._stop = loop.create_future()
        self._active = True
        self._frames: list[bytes] = []  # taken, not written yet
        self._turns = _turn_counter(loop)
        self._written_in = -1  # the last turn a write was made in
        self._last_write = loop.time()
        self._idle = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._unfinished: tuple[Generator[Any, Any, None], Any] | None = None
        self._error: BaseException | None = None
        self._idled = False

    def push(self, event: RunEvent) -> None:
        if not self._active:
            return
        if event.kind in FINAL_KINDS or not self._follower.take(event):
            self._stopping()  # the response's task sends it
            return
        self._frames.append(frame(event))
        if len(self._frames) > 1:
            return  # it joins the write due at the end of this turn
        turn = self._turns.now()
        if turn != self._written_in:
            self._flush(turn)
        else:
            self._loop.call_soon(self._flush)

    async def stopped(self, idle: float | None) -> bool:
        """Wait until the writes stop; True if that was for ``idle`` seconds without one."""
        if idle is not None:
            self._idle = idle
            self._timer = self._loop.call_at(self._last_write + idle, self._check_idle)
        try:
            await self._stop
        finally:
            self._active = False
            if self._timer is not None:
                self._timer.cancel()
        return self._idled

    async def finish(self) -> None:
        """Complete a send the run's task had to leave, or raise what a send raised."""
        if self._unfinished is not None:
            step, waiting = self._unfinished
            self._unfinished = None
            await _Resumed(step, waiting)
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def discard(self) -> None:
        self._active = False
        self._frames.clear()
        if self._unfinished is not None:  # the response is over (cancelled)
            self._unfinished[0].close()
            self._unfinished = None

    def _flush(self, turn: int | None = None) -> None:
        """Write what was taken; ``turn``: the loop's turn now, when the caller has it."""
        frames = self._frames
        if not frames or not self._active:
            return
        body = frames[0] if len(frames) == 1 else b"".join(frames)
        frames.clear()
        message: Message = {"type": "http.response.body", "body": body, "more_body": True}
        step = self._send(message).__await__()
        try:
            waiting = next(step)
        except StopIteration:  # sent
            self._last_write = self._loop.time()
            self._written_in = self._turns.now() if turn is None else turn
            return
        except BaseException as error:  # the response's task raises it
            self._error = error
        else:  # the send waits for the socket to drain: the response's task finishes it
            self._unfinished = (step, waiting)
        self._stopped_writing()

    def _check_idle(self) -> None:
        due = self._last_write + self._idle
        if self._loop.time() >= due:
            self._idled = True
            self._stopping()
        else:
            self._timer = self._loop.call_at(due, self._check_idle)

    def _stopping(self) -> None:
        self._flush()  # what was taken goes out before the response's task goes on
        self._stopped_writing()

    def _stopped_writing(self) -> None:
        self._active = False
        if not self._stop.done():
            self._stop.set_result(None)


class _TurnCounter:
    """Counts the turns of one event loop, for sinks that must tell one turn from the next.

    Reading it schedules one callback to the end of the turn (once per turn,
    for every sink of the loop): cheaper than a callback per token, and the same
    on any event loop (uvloop's clock would tell turns apart only to the
    millisecond, asyncio's not at all).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._turn = 0
        self._counting = False

    def now(self) -> int:
        if not self._counting:
            self._counting = True
            self._loop.call_soon(self._next)
        return self._turn

    def _next(self) -> None:
        self._turn += 1
        self._counting = False


_turn_counters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _TurnCounter] = (
    weakref.WeakKeyDictionary()
)


def _turn_counter(loop: asyncio.AbstractEventLoop) -> _TurnCounter:
    counter = _turn_counters.get(loop)
    if counter is None:
        counter = _turn_counters[loop] = _TurnCounter(loop)
    return counter


class _Resumed:
    """The rest of an ``await`` that another task started and that stopped at ``waiting``."""

    def __init__(self, step: Generator[Any, Any, None], waiting: Any) -> None:
        self._step = step
        self._waiting = waiting

    def __await__(self) -> Generator[Any, Any, None]:
        step, waiting = self._step, self._waiting
        while True:  # what ``yield from`` does, from the second step on
            try:
                value = yield waiting
            except BaseException as error:
                try:
                    waiting = step.throw(error)
                except StopIteration:
                    return
            else:
                try:
                    waiting = step.send(value)
                except StopIteration:
                    return


class EventStreamResponse(StreamingResponse):
    """Starlette's ``StreamingResponse``, without an anyio task group per response.

    Starlette (for servers older than ASGI spec 2.4, uvicorn included) streams
    in a task group whose second task waits for the client to disconnect; the
    group, its cancel scopes and their ``current_task()`` calls were a
    noticeable part of a request's CPU (docs/performance.md). Here the response
    streams in its own task and one plain task waits for the disconnect: when
    the client goes away, it cancels the stream, and the response ends quietly
    as Starlette's does. A cancel from anywhere else still propagates.

    A ``LastFrame`` chunk is sent as the end of the body (uvicorn writes it and
    the chunked encoding's terminator at once); anything after it is dropped.
    With a ``direct`` writer, each chunk sent is followed by a stretch of direct
    writes, before the next chunk is asked for.
    """

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        direct: DirectWriter | None = None,
        media_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()  # once: each lookup is a getpid on Python 3.11
        stream = asyncio.current_task(loop)
        if scope["type"] != "http" or stream is None:
            await super().__call__(scope, receive, send)
            return
        watch = _DisconnectWatch(stream)
        watcher = loop.create_task(watch.wait(receive))
        try:
            await self._stream(send, scope.get(BODY_SEND) or send, loop)
        except asyncio.CancelledError:
            if not watch.cancelled or stream.uncancel() > 0:
                raise
        finally:
            watch.streaming = False
            watcher.cancel()

    async def stream_response(self, send: Send) -> None:
        await self._stream(send, send, asyncio.get_running_loop())

    async def _stream(self, send: Send, body_send: Send, loop: asyncio.AbstractEventLoop) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        ended = False
        async for chunk in self.body_iterator:
            if ended:
                continue  # nothing is sent after the end of the body
            data = chunk if isinstance(chunk, bytes | memoryview) else chunk.encode(self.charset)
            ended = isinstance(chunk, LastFrame)
            await send({"type": "http.response.body", "body": data, "more_body": not ended})
            if self._direct is not None and not ended:
                await self._direct.write(send, body_send, loop)
        if not ended:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


class _DisconnectWatch:
    def __init__(self, stream: asyncio.Task[object]) -> None:
        self.stream = stream
        self.streaming = True
        self.cancelled = False

    async def wait(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if self.streaming:
            self.cancelled = True
            self.stream.cancel()


async def iterate_events(events: list[RunEvent]) -> AsyncIterator[RunEvent | None]:
    """A finished list of events as the stream ``event_stream`` takes."""
    for event in events:
        yield event
