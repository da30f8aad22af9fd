"""The wire side of ``OpenAIChatModel``: one POST to ``/chat/completions``, its streamed reply.

``UpstreamConnection`` holds the aiohttp connection pool to one server and sends
the request body ``openai.py`` built, with the key as a bearer token; an error
status becomes an agenthost ``ModelError`` here (``openai_errors``). The
``openai`` SDK's own client did this before, and cost more CPU per request
than the rest of a streamed turn: it walks the request by reflection, then
hands it through httpx2 and an aiohttp shim (docs/performance.md).

``ChunkReader`` reads the reply's bytes (one await per network read, however
many chunks it holds), splits the server-sent-event lines and parses each
``data:`` line into a plain dict when it is used (orjson, or Python's parser
for what orjson refuses), so a bad chunk fails only after the good ones before
it. A JSON error, an ``error`` object sent mid-stream or a dropped connection
raises the matching ``ModelError``.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import aiohttp
import orjson

from agenthost import __version__
from agenthost.clock import Clock
from agenthost.llm.openai_errors import UpstreamErrors

__all__ = ["Chunk", "ChunkReader", "UpstreamConnection"]

Chunk = dict[str, Any]
"""One parsed stream chunk (a ``ChatCompletionChunk`` as JSON)."""


class UpstreamConnection:
    """The connection pool to one OpenAI-compatible server; open it inside the event loop."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        organization: str | None = None,
        project: str | None = None,
        connect_timeout: float,
        max_connections: int,
        errors: UpstreamErrors,
        clock: Clock,
    ) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "User-Agent": f"agenthost/{__version__}",
        }
        if organization:
            self._headers["OpenAI-Organization"] = organization
        if project:
            self._headers["OpenAI-Project"] = project
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        self._errors = errors
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    def open(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No read timeout: the model enforces first-token, idle and total budgets.
            # The headers are the session's: merged into each request without a check.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
                headers=self._headers,
            )
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def stream(self, body: dict[str, object]) -> ChunkReader:
        """POST ``body``; the reply's chunks once the server answered with success."""
        session = self.open()
        try:
            data = orjson.dumps(body)
        except TypeError:  # a lone surrogate in a message: escaped, as only ASCII JSON can
            data = json.dumps(body, separators=(",", ":")).encode()
        try:
            response = await session.post(self._url, data=data)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise self._errors.from_transport(error) from error
        if not 200 <= response.status < 300:
            try:
                raw = await response.read()
            except (aiohttp.ClientError, TimeoutError):
                raw = b""
            finally:
                response.release()
            now = self._clock.now()
            raise self._errors.from_status(response.status, response.headers, raw, now=now)
        return ChunkReader(response, self._errors)


class ChunkReader:
    """The chunks of a streamed reply: its ``data:`` lines, each parsed as JSON."""

    def __init__(self, response: aiohttp.ClientResponse, errors: UpstreamErrors) -> None:
        self._response = response
        self._content = response.content
        self._errors = errors
        self._partial = b""
        self._ready: deque[bytes] = deque()
        self._done = False

    async def next(self) -> Chunk | None:
        """The next chunk, or None at ``[DONE]`` or the end of the body."""
        while not self._ready:
            if self._done:
                await self._drain()
                return None
            try:
                data = await self._content.readany()
            except (aiohttp.ClientError, TimeoutError) as error:
                raise self._errors.from_transport(error) from error
            if not data:  # the end of the body
                self._done = True
                data = b"\n"
            self._feed(data)
        # Parsed one at a time, so a bad chunk fails only after those before it are used.
        payload = self._ready.popleft()
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            chunk = self._parse_leniently(payload)
        if not isinstance(chunk, dict):
            raise self._errors.malformed_chunk()
        reported = chunk.get("error")
        if reported:
            raise self._errors.mid_stream(reported)
        return chunk

    async def aclose(self) -> None:
        """Give the connection back to the pool after the whole body, else drop it."""
        if self._content.at_eof():
            self._response.release()
        else:
            self._response.close()

    def _feed(self, data: bytes) -> None:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if self._done or not line.startswith(b"data:"):
                continue  # comments, event names, ids and the blank line between events
            payload = line[5:].strip()
            if payload.startswith(b"[DONE]"):
                self._done = True
                continue
            self._ready.append(payload)

    def _parse_leniently(self, payload: bytes) -> object:
        """What orjson refuses and Python's parser takes: a lone surrogate, NaN."""
        try:
            return json.loads(payload)
        except ValueError as error:
            raise self._errors.malformed_chunk() from error

    async def _drain(self) -> None:
        """Read what follows ``[DONE]``, so that the connection can go back to the pool."""
        try:
            while await self._content.readany():
                pass
        except (aiohttp.ClientError, TimeoutError):
            pass
