"""A scriptable OpenAI-compatible server on loopback, for testing ``OpenAIChatModel``.

Each test queues the replies the server gives, one per request, in order:
a ``StreamReply`` (server-sent chunks, with ``Pause`` and ``Drop`` steps between
them to script slow, stalled and broken streams) or an ``ErrorReply`` (an HTTP
error with the provider's JSON body). The server records every request body it
received and every client that went away before its reply was done.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from aiohttp import web

_POLL = 0.01


@dataclass(frozen=True, slots=True)
class Pause:
    """Send nothing for ``seconds`` (a slow or stalled stream)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Drop:
    """Close the connection without finishing the reply (a reset mid-stream)."""


Chunk = dict[str, object] | str
"""A chunk object, sent as JSON; a ``str`` is sent as the data line verbatim."""
Step = Chunk | Pause | Drop


@dataclass(frozen=True, slots=True)
class StreamReply:
    """A streamed reply: ``steps`` in order, then ``[DONE]`` unless ``done`` is False."""

    steps: tuple[Step, ...]
    headers_delay: float = 0.0
    done: bool = True


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An HTTP error with OpenAI's error body."""

    status: int
    message: str = "error"
    headers: dict[str, str] = field(default_factory=dict)


Reply = StreamReply | ErrorReply


def text_chunk(text: str) -> dict[str, object]:
    return _chunk({"content": text})


def role_chunk() -> dict[str, object]:
    return _chunk({"role": "assistant", "content": ""})


def tool_call_chunk(
    index: int, *, call_id: str | None = None, name: str | None = None, arguments: str = ""
) -> dict[str, object]:
    function: dict[str, object] = {"arguments": arguments}
    call: dict[str, object] = {"index": index, "function": function}
    if call_id is not None:
        call["id"] = call_id
        call["type"] = "function"
    if name is not None:
        function["name"] = name
    return _chunk({"tool_calls": [call]})


def finish_chunk(reason: str) -> dict[str, object]:
    return _chunk({}, finish_reason=reason)


def usage_chunk(prompt_tokens: int, completion_tokens: int) -> dict[str, object]:
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    return {**_envelope(), "choices": [], "usage": usage}


def text_reply(*pieces: str, finish: str = "stop", usage: tuple[int, int] = (5, 2)) -> StreamReply:
    """A plain streamed answer: a role chunk, the pieces, the finish, then usage."""
    steps: list[Step] = [role_chunk(), *(text_chunk(piece) for piece in pieces)]
    steps += [finish_chunk(finish), usage_chunk(*usage)]
    return StreamReply(tuple(steps))


def _envelope() -> dict[str, object]:
    return {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": "mock"}


def _chunk(delta: dict[str, object], *, finish_reason: str | None = None) -> dict[str, object]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return {**_envelope(), "choices": [choice]}


class MockOpenAIServer:
    """Serves ``POST /v1/chat/completions`` on 127.0.0.1 from the queued replies."""

    def __init__(self) -> None:
        self.requests: list[dict[str, object]] = []
        self.raw_bodies: list[bytes] = []
        self.authorizations: list[str | None] = []
        self.headers: list[dict[str, str]] = []
        self.disconnects = 0
        self._replies: deque[Reply] = deque()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._changed = asyncio.Condition()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    def add(self, *replies: Reply) -> None:
        self._replies.extend(replies)

    async def wait_for_disconnects(self, count: int) -> None:
        """Wait until ``count`` clients in all went away before their reply was done."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.disconnects >= count)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.raw_bodies.append(await request.read())
        self.requests.append(await request.json())
        self.authorizations.append(request.headers.get("Authorization"))
        self.headers.append(dict(request.headers))
        reply = self._replies.popleft() if self._replies else ErrorReply(500, "no reply queued")
        if isinstance(reply, ErrorReply):
            body = {"error": {"message": reply.message, "type": "mock_error", "code": None}}
            return web.json_response(body, status=reply.status, headers=reply.headers)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        try:
            await self._pause(request, reply.headers_delay)
            await response.prepare(request)
            for step in reply.steps:
                if isinstance(step, Pause):
                    await self._pause(request, step.seconds)
                elif isinstance(step, Drop):
                    self._drop(request)
                    return response
                else:
                    data = step if isinstance(step, str) else json.dumps(step)
                    await response.write(f"data: {data}\n\n".encode())
            if reply.done:
                await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (ConnectionError, _ClientGoneError):
            async with self._changed:
                self.disconnects += 1
                self._changed.notify_all()
        return response

    async def _pause(self, request: web.Request, seconds: float) -> None:
        """Sleep, but notice promptly when the client goes away meanwhile."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while loop.time() < until:
            if request.transport is None or request.transport.is_closing():
                raise _ClientGoneError
            await asyncio.sleep(min(_POLL, until - loop.time()))

    def _drop(self, request: web.Request) -> None:
        if request.transport is not None:
            with contextlib.suppress(OSError):
                request.transport.close()


class _ClientGoneError(Exception):
    """The client closed the connection while the server was pausing."""
