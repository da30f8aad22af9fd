"""One connection to the model server and the reply it is reading: httptools' callbacks.

A read is the protocol's ``data_received``, httptools' C parser and one
``on_body`` call that hands the bytes to the one reader and wakes it (see the
package's docstring for why). ``HttpResponse`` is the reader's side.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from typing import Protocol, cast

import httptools

MAX_HEAD_BYTES = 64 * 1024
"""The most a reply's status line and headers may take."""
READ_HIGH_WATER = 1024 * 1024
"""Bytes received and not yet taken at which reading from the socket pauses."""
_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class HttpTransportError(OSError):
    """The connection failed: refused, reset, dropped mid-reply, or not HTTP."""


class StaleConnectionError(Exception):
    """A reused connection ended before any of the reply arrived."""


class Pool(Protocol):
    """Where a connection goes back to (``HttpClient``)."""

    def release(self, connection: Connection) -> None:
        """Take it back after its reply: pooled if it can carry another, else closed."""
        ...

    def lost(self, connection: Connection) -> None:
        """Its server closed it (idle or not)."""
        ...


class Connection(asyncio.Protocol):
    """One connection to the server and the reply it is reading (httptools' callbacks)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pooled_by: Pool | None = None
        self.idle_since = 0.0
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._lost = False
        self._paused = False
        self._reset_reply()

    def _reset_reply(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.pieces: list[bytes] = []
        self.buffered = 0
        self.head_done = False
        self.complete = False
        self._keep_alive = False
        self.received = 0  # bytes of this reply so far, head included

    async def exchange(self, request: bytes, pool: Pool) -> HttpResponse:
        self._reset_reply()
        transport = self.transport
        if transport is None or transport.is_closing():
            raise StaleConnectionError()
        transport.write(request)
        while not self.head_done:
            if self._error is not None:
                if self.received == 0 and self._lost:
                    raise StaleConnectionError()
                raise self._error
            await self.wait()
        return HttpResponse(self, pool)

    def wait(self) -> asyncio.Future[None]:
        """A future done when more of the body, or its end, has arrived; raises a failure."""
        if self._error is not None:
            raise self._error
        waiter = self._waiter = self.loop.create_future()
        if self.complete:
            waiter.set_result(None)
        return waiter

    def take(self) -> bytes | None:
        """The body bytes received and not taken yet: ``b""`` if none, None after the last."""
        pieces = self.pieces
        if not pieces:
            return None if self.complete else b""
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        pieces.clear()
        self.buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        """Whether the reply is over and the connection can carry another request."""
        transport = self.transport
        return (
            self.complete
            and self._error is None
            and transport is not None
            and not transport.is_closing()
            and self._keep_alive
        )

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as error:
            self._fail(HttpTransportError(f"the model server's reply is not valid HTTP: {error}"))
        if not self.head_done and self.received > MAX_HEAD_BYTES:
            self._fail(HttpTransportError("the model server's reply headers are too large"))

    def eof_received(self) -> bool:
        return False  # close our end too

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if exc is None and self.head_done and not self.complete and not self._has_length():
            self.complete = True  # a body that ends with the connection (not with a reset)
            self._wake()
        elif not self.complete:
            self._fail(HttpTransportError("the model server closed the connection"))
        if self.pooled_by is not None:
            self.pooled_by.lost(self)

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if 100 <= self.status < 200:  # an interim reply: the real one follows
            self.headers = {}
            return
        self.head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.pieces.append(body)
        self.buffered += len(body)
        if self.buffered > READ_HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        waiter = self._waiter  # ``_wake``, inlined: this runs once per token
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def on_message_complete(self) -> None:
        if self.head_done:
            # Asked now: llhttp knows it only until the next reply begins.
            self._keep_alive = self._parser.should_keep_alive()
            self.complete = True
            self._wake()

    def _has_length(self) -> bool:
        return "content-length" in self.headers or "chunked" in self.headers.get(
            "transfer-encoding", ""
        )

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)


class HttpResponse:
    """A reply whose head has arrived: its status, headers, and its body as it comes.

    Read the body with ``take`` (what arrived: ``b""`` if nothing yet, None once
    it has all been taken) and ``wait`` (a future done when more arrives; it
    raises ``HttpTransportError`` once the connection has failed). When the
    body is not encoded they are the connection's own methods: they run once
    per token, and a call through here would be one Python frame more each.
    """

    def __init__(self, connection: Connection, pool: Pool) -> None:
        self._connection = connection
        self._pool = pool
        self.loop = connection.loop
        self.status = connection.status
        self.headers = connection.headers
        self.take: Callable[[], bytes | None] = connection.take
        self.wait: Callable[[], asyncio.Future[None]] = connection.wait
        encoding = self.headers.get("content-encoding", "identity").strip().lower()
        if encoding in _ENCODINGS:
            self._decoder = zlib.decompressobj(_ENCODINGS[encoding])
            self._flushed = False
            self.take = self._decoded
        elif encoding not in ("identity", ""):
            connection.close()
            raise HttpTransportError(f"the model server sent an unsupported encoding {encoding!r}")
        self._released = False

    async def read(self, limit: int) -> bytes:
        """The rest of the body, at most ``limit`` bytes (what is over is dropped)."""
        parts: list[bytes] = []
        size = 0
        while (data := self.take()) is not None:
            if not data:
                await self.wait()
            elif size < limit:
                parts.append(data[: limit - size])
                size += len(data)
        return b"".join(parts)

    def release(self) -> None:
        """Give the connection back: to the pool after the whole body, else closed."""
        if self._released:
            return
        self._released = True
        if not self._connection.complete:
            self._connection.close()
        self._pool.release(self._connection)

    def _decoded(self) -> bytes | None:
        data = self._connection.take()
        try:
            if data is not None:
                return self._decoder.decompress(data)
            if self._flushed:
                return None
            self._flushed = True
            return self._decoder.flush() or None
        except zlib.error as error:
            raise HttpTransportError("the model server's compressed reply is not valid") from error
