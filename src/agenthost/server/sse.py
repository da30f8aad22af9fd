"""Server-Sent Events framing for run events.

Each event is ``id``, ``event`` and one ``data:`` line per line of its text, so
multi-line text survives exactly (the client joins ``data`` lines with LF), and
text that looks like framing (``data:``, ``event:``, a blank line) can never
start a new event: it is always behind a ``data: `` prefix. The text has no CR
(the run turned CR and CRLF into LF), and SSE strips only the one space after
``data:``, so leading spaces survive too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from agenthost.runs.events import RunEvent
from agenthost.runs.log import LogFollower

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
    )


class EventStreamResponse(StreamingResponse):
    """Starlette's ``StreamingResponse``, without an anyio task group per response.

    Starlette (for servers older than ASGI spec 2.4, uvicorn included) streams
    in a task group whose second task waits for the client to disconnect; the
    group, its cancel scopes and their ``current_task()`` calls were a
    noticeable part of a request's CPU (docs/performance.md). Here the response
    streams in its own task and one plain task waits for the disconnect: when
    the client goes away, it cancels the stream, and the response ends quietly
    as Starlette's does. A cancel from anywhere else still propagates.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = asyncio.current_task()
        if scope["type"] != "http" or stream is None:
            await super().__call__(scope, receive, send)
            return
        watch = _DisconnectWatch(stream)
        watcher = asyncio.create_task(watch.wait(receive))
        try:
            await self.stream_response(send)
        except asyncio.CancelledError:
            if not watch.cancelled or stream.uncancel() > 0:
                raise
        finally:
            watch.streaming = False
            watcher.cancel()

    async def stream_response(self, send: Send) -> None:
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
