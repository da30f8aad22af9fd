"""A lean HTTP/1.1 client for the model server: one POST per connection at a time, streamed.

``OpenAIChatModel`` sends one request per model call and reads the reply as
it streams, one network read per token. aiohttp did this before, and per
token it ran some ten Python frames between the socket and the reader (its
protocol, its stream reader's feed, chunk bookkeeping, ``readany``, its waits
and timers), and on Python 3.11 it sent each request's body from a task of its
own, a turn of the event loop late. Here a read is the protocol's
``data_received``, httptools' C parser, and one ``on_body`` call that hands
the bytes to the one reader and wakes it; the request (head and body) is
written at once by the caller, in one write.

Connections are kept alive in a pool per server (LIFO, so the most recently
used, least likely to have been closed by the server, goes first), up to
``max_connections`` open at once; callers beyond that wait for one. An idle
connection the server closes is dropped when its end arrives; one that the
server closed while our request was on its way (the keep-alive race: nothing
of the reply arrived) is retried once on a new connection, since a server
closes an idle connection only before reading a request on it.

Supported: ``http`` and ``https`` (the system's CA store, or an
``ssl.SSLContext``), replies framed by ``Content-Length``, chunked or by the
end of the connection, and ``gzip``/``deflate`` content encodings (``identity``
is asked for). Not: proxies, redirects (a 3xx is returned as it is), HTTP/2.
Failures raise ``HttpTransportError`` (an ``OSError``: refused, reset, TLS)
or ``TimeoutError`` (connect timeout).
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

__all__ = ["HttpClient", "HttpResponse", "HttpTransportError", "Target"]

KEEPALIVE_SECONDS = 15.0
"""An idle pooled connection older than this is closed rather than reused."""
MAX_HEAD_BYTES = 64 * 1024
"""The most a reply's status line and headers may take."""
READ_HIGH_WATER = 1024 * 1024
"""Bytes received and not yet taken at which reading from the socket pauses."""
_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class HttpTransportError(OSError):
    """The connection failed: refused, reset, dropped mid-reply, or not HTTP."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL's requests go: ``host:port`` over TLS or not, and the request target."""

    host: str
    port: int
    tls: bool
    path: str
    host_header: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        host_header = shown if parts.port is None else f"{shown}:{port}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(host, port, tls, path, host_header)


class HttpClient:
    """POSTs to one URL over a pool of keep-alive connections; open and close it in one loop."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        *,
        connect_timeout: float,
        max_connections: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._target = Target.parse(url)
        lines = [f"POST {self._target.path} HTTP/1.1", f"Host: {self._target.host_header}"]
        for name, value in {**headers, "Accept-Encoding": "identity"}.items():
            if any(c in name + value for c in "\r\n\0") or not name.isascii():
                raise ValueError(f"header {name!r} holds a line break or a non-ASCII name")
            lines.append(f"{name}: {value}")
        # The head of every request, but its length; latin-1 as HTTP/1.1 headers are.
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        self._ssl: ssl.SSLContext | None = None
        if self._target.tls:
            self._ssl = ssl_context or ssl.create_default_context()
        self._idle: list[_Connection] = []
        self._open = 0  # connections open or opening, idle ones included
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def post(self, body: bytes) -> HttpResponse:
        """Send ``body``; the reply once its head has arrived (read its body, then ``release``)."""
        request = b"%s%d\r\n\r\n%s" % (self._head, len(body), body)
        connection, reused = await self._acquire()
        try:
            try:
                return await connection.exchange(request, self)
            except _StaleConnectionError:
                connection.close()
                self._forget(connection)
                if not reused:
                    raise HttpTransportError("the model server closed the connection") from None
            connection = await self._connect()
            return await connection.exchange(request, self)
        except BaseException:
            connection.close()
            self._forget(connection)
            raise

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        for waiter in self._waiting:
            if not waiter.done():
                waiter.set_exception(HttpTransportError("the client is closed"))

    async def _acquire(self) -> tuple[_Connection, bool]:
        if self._closed:
            raise HttpTransportError("the client is closed")
        while True:
            while self._idle:
                connection = self._idle.pop()
                if connection.reusable() and not connection.expired():
                    return connection, True
                connection.close()
                self._forget(connection)
            if self._open < self._max_connections:
                return await self._connect(), False
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled: the turn goes to the next caller
                raise
            finally:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)

    async def _connect(self) -> _Connection:
        self._open += 1
        target, loop = self._target, asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop),
                    target.host,
                    target.port,
                    ssl=self._ssl,
                    server_hostname=target.host if self._ssl is not None else None,
                )
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise
        connection.pooled_by = self
        return connection

    def release(self, connection: _Connection) -> None:
        """Take a connection back after its reply: pooled if it can carry another, else closed."""
        if not self._closed and connection.reusable():
            connection.idle_since = connection.loop.time()
            self._idle.append(connection)
            self._wake_one()
        else:
            connection.close()
            self._forget(connection)

    def _forget(self, connection: _Connection) -> None:
        if connection.pooled_by is self:
            connection.pooled_by = None
            self._open -= 1
            if connection in self._idle:
                self._idle.remove(connection)
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class _StaleConnectionError(Exception):
    """A reused connection ended before any of the reply arrived."""


class _Connection(asyncio.Protocol):
    """One connection to the server and the reply it is reading (httptools' callbacks)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pooled_by: HttpClient | None = None
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
        self._name = b""

    async def exchange(self, request: bytes, client: HttpClient) -> HttpResponse:
        self._reset_reply()
        transport = self.transport
        if transport is None or transport.is_closing():
            raise _StaleConnectionError()
        transport.write(request)
        while not self.head_done:
            if self._error is not None:
                if self.received == 0 and self._lost:
                    raise _StaleConnectionError()
                raise self._error
            await self.wait()
        return HttpResponse(self, client)

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

    def expired(self) -> bool:
        return self.loop.time() - self.idle_since >= KEEPALIVE_SECONDS

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
        if self.head_done and not self.complete and not self._has_length():
            self.complete = True  # a body that ends with the connection
            self._wake()
        elif not self.complete:
            self._fail(HttpTransportError("the model server closed the connection"))
        client = self.pooled_by
        if client is not None and self in client._idle:
            client._forget(self)

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
        waiter = self._waiter
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

    def __init__(self, connection: _Connection, client: HttpClient) -> None:
        self._connection = connection
        self._client = client
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
        self._client.release(self._connection)

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
