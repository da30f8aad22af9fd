"""``HttpClient``: POSTs to one URL over a pool of kept-alive connections.

The pool is LIFO (the most recently used connection, least likely to have
been closed by the server, goes first), holds up to ``max_connections`` open
at once, and makes callers beyond that wait for one. The server's name is
looked up once per ``DNS_TTL_SECONDS`` for all new connections, and each of
its addresses is tried in turn.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

from agenthost.llm.http1.connection import (
    Connection,
    HttpResponse,
    HttpTransportError,
    StaleConnectionError,
)

DNS_TTL_SECONDS = 10.0
"""How long the server's addresses, once looked up, are used without looking again."""
KEEPALIVE_SECONDS = 15.0
"""An idle pooled connection older than this is closed rather than reused."""


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
            # Without what may precede an ``@``: a password must not reach the logs.
            raise ValueError(f"not an http(s) URL: {url.rpartition('@')[2]!r}")
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
        self._idle: list[Connection] = []
        self._open = 0  # connections open or opening, idle ones included
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self._addresses_found: list[tuple[str, int]] = []
        self._addresses_until = 0.0
        self._lookup: asyncio.Task[list[tuple[str, int]]] | None = None

    async def post(self, body: bytes) -> HttpResponse:
        """Send ``body``; the reply once its head has arrived (read its body, then ``release``)."""
        request = b"%s%d\r\n\r\n%s" % (self._head, len(body), body)
        connection, reused = await self._acquire()
        try:
            try:
                return await connection.exchange(request, self)
            except StaleConnectionError:
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
        if self._lookup is not None:
            self._lookup.cancel()
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        for waiter in self._waiting:
            if not waiter.done():
                waiter.set_exception(HttpTransportError("the client is closed"))

    async def _acquire(self) -> tuple[Connection, bool]:
        if self._closed:
            raise HttpTransportError("the client is closed")
        while True:
            while self._idle:
                connection = self._idle.pop()
                idle_for = connection.loop.time() - connection.idle_since
                if connection.reusable() and idle_for < KEEPALIVE_SECONDS:
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

    async def _connect(self) -> Connection:
        self._open += 1
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                connection = await self._open_connection(loop)
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise
        connection.pooled_by = self
        return connection

    async def _open_connection(self, loop: asyncio.AbstractEventLoop) -> Connection:
        """A connection to the first of the server's addresses that takes one."""
        target = self._target
        failure: OSError | None = None
        for host, port in await self._addresses(loop):
            try:
                _, connection = await loop.create_connection(
                    lambda: Connection(loop),
                    host,
                    port,
                    ssl=self._ssl,
                    server_hostname=target.host if self._ssl is not None else None,
                )
            except OSError as error:
                failure = error
            else:
                return connection
        self._addresses_until = 0.0  # none took it: look the name up again next time
        assert failure is not None
        raise failure

    async def _addresses(self, loop: asyncio.AbstractEventLoop) -> list[tuple[str, int]]:
        """The server's addresses, looked up once per ``DNS_TTL_SECONDS`` for all callers.

        A burst of new connections (a server starting under load) would otherwise
        make one lookup each, in the loop's small thread pool, one after another.
        """
        if self._addresses_found and loop.time() < self._addresses_until:
            return self._addresses_found
        lookup = self._lookup
        if lookup is None or lookup.done():
            lookup = self._lookup = loop.create_task(self._look_up(loop))
            # Its callers may all be cancelled: its failure is theirs, not a loop warning.
            lookup.add_done_callback(_retrieved)
        return await asyncio.shield(lookup)

    async def _look_up(self, loop: asyncio.AbstractEventLoop) -> list[tuple[str, int]]:
        target = self._target
        found = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys((str(info[4][0]), int(info[4][1])) for info in found))
        self._addresses_found, self._addresses_until = addresses, loop.time() + DNS_TTL_SECONDS
        return addresses

    def release(self, connection: Connection) -> None:
        """Take a connection back after its reply: pooled if it can carry another, else closed."""
        if not self._closed and connection.reusable():
            connection.idle_since = connection.loop.time()
            self._idle.append(connection)
            self._wake_one()
        else:
            connection.close()
            self._forget(connection)

    def lost(self, connection: Connection) -> None:
        """The server closed a connection: an idle one leaves the pool at once."""
        if connection in self._idle:
            self._forget(connection)

    def _forget(self, connection: Connection) -> None:
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


def _retrieved(task: asyncio.Task[list[tuple[str, int]]]) -> None:
    if not task.cancelled():
        task.exception()
