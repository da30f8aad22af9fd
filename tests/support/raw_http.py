"""A loopback server speaking raw HTTP/1.1, each reply scripted byte for byte.

For the model server's client (``agenthost.llm.http1``) and its reader: what
a real server may send that the mock OpenAI server never does (replies framed
by the connection's end, resets, interim replies, bodies that never end).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

Answer = Callable[[asyncio.StreamWriter], Awaitable[bool]]
"""Writes one reply; returns whether the server keeps the connection open for the next request."""


def sends(data: bytes, *, keep: bool = True) -> Answer:
    async def answer(writer: asyncio.StreamWriter) -> bool:
        writer.write(data)
        await writer.drain()
        return keep

    return answer


def hangs_up() -> Answer:
    async def answer(writer: asyncio.StreamWriter) -> bool:
        return False

    return answer


def ok(body: bytes, *extra: str) -> bytes:
    head = "".join(f"{line}\r\n" for line in extra)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), head.encode(), body)


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
END_OF_CHUNKS = b"0\r\n\r\n"


class ScriptedServer:
    """A loopback server answering each request, on any connection, with the next ``Answer``."""

    def __init__(self, *answers: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answers = deque(answers)
        self.requests: list[tuple[bytes, bytes]] = []  # (head, body) as received
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.ended: list[int] = []  # connection numbers whose client went away
        self._tls = tls
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    def url(self, path: str = "/v1/chat/completions") -> str:
        scheme = "https" if self._tls else "http"
        host = "localhost" if self._tls else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}{path}"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        number = self.connections
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    self.ended.append(number)
                    return
                except asyncio.CancelledError:
                    return  # the test is over
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.requests.append((head, body))
                if not await self.answers.popleft()(writer):
                    return
        finally:
            self.open_now -= 1
            writer.close()
