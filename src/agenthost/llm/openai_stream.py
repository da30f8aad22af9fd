"""The wire side of ``OpenAIChatModel``: one POST to ``/chat/completions``, its streamed reply.

``UpstreamConnection`` holds the connection pool to one server (``http1``)
and sends the request body ``openai.py`` built, with the key as a bearer
token; an error status becomes an agenthost ``ModelError`` here
(``openai_errors``). The ``openai`` SDK's own client did this before, and cost
more CPU per request than the rest of a streamed turn: it walks the request by
reflection, then hands it through httpx2 and an aiohttp shim; aiohttp itself
then ran some ten Python frames per token (docs/performance.md).

``ChunkReader`` reads the reply's bytes (one wake-up per network read, however
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

import orjson

from agenthost import __version__
from agenthost.clock import Clock
from agenthost.errors import ConfigurationError
from agenthost.llm.http1 import HttpClient, HttpResponse
from agenthost.llm.openai_errors import UpstreamErrors
from agenthost.step_timer import StepTimer

__all__ = ["Chunk", "ChunkReader", "UpstreamConnection"]

Chunk = dict[str, Any]
"""One parsed stream chunk (a ``ChatCompletionChunk`` as JSON)."""
ERROR_BODY_LIMIT = 64 * 1024
"""The most of an error reply's body read for its message."""
END_AFTER_DONE_SECONDS = 1.0
"""How long the body's end may follow ``[DONE]`` before the reply ends without it."""


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
        # Made now: a URL or header that cannot make a request is a configuration error.
        self._client: HttpClient | None = self._new_client()

    def open(self) -> HttpClient:
        if self._client is None:
            self._client = self._new_client()
        return self._client

    def _new_client(self) -> HttpClient:
        try:
            return HttpClient(
                self._url,
                self._headers,
                connect_timeout=self._connect_timeout,
                max_connections=self._max_connections,
            )
        except ValueError as error:
            raise ConfigurationError(
                f"The model server's settings cannot make a request: {error}. Check "
                "OPENAI_BASE_URL (http:// or https://) and that OPENAI_API_KEY and the "
                "organization and project ids are each one line."
            ) from None

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def stream(self, body: dict[str, object]) -> ChunkReader:
        """POST ``body``; the reply's chunks once the server answered with success."""
        client = self.open()
        try:
            data = orjson.dumps(body)
        except TypeError:  # a lone surrogate in a message: escaped, as only ASCII JSON can
            data = json.dumps(body, separators=(",", ":")).encode()
        try:
            response = await client.post(data)
        except (OSError, TimeoutError) as error:
            raise self._errors.from_transport(error) from error
        if not 200 <= response.status < 300:
            try:
                raw = await response.read(ERROR_BODY_LIMIT)
            except (OSError, TimeoutError):
                raw = b""
            finally:
                response.release()
            now = self._clock.now()
            raise self._errors.from_status(response.status, response.headers, raw, now=now)
        return ChunkReader(response, self._errors)


class ChunkReader:
    """The chunks of a streamed reply: its ``data:`` lines, each parsed as JSON.

    ``next(limit)`` bounds each wait for a chunk with one ``StepTimer`` for the
    whole reply, which ends a wait that ran out by failing the wait's own future
    (``StepTimer.bound``): no wrapping coroutine and no task cancel per chunk.
    """

    def __init__(self, response: HttpResponse, errors: UpstreamErrors) -> None:
        self._response = response
        self._errors = errors
        self._partial = b""
        self._ready: deque[bytes] = deque()
        self._done = False
        self._loop = response.loop
        self._timer = StepTimer(loop=response.loop)

    async def next(self, limit: float | None = None) -> Chunk | None:
        """The next chunk, or None at ``[DONE]`` or the end of the body.

        ``limit``: seconds it may take at most; ``TimeoutError`` after that.
        """
        response = self._response
        due = self._loop.time() + limit if limit is not None else None
        try:
            while not self._ready:
                data = response.take()
                if data:
                    self._feed(data)
                elif data is None:  # the end of the body
                    self._done = True
                    return None
                else:
                    waiter = response.wait()
                    if self._done:  # after [DONE]: the body's end, so the connection is reused
                        self._timer.bound(waiter, self._loop.time() + END_AFTER_DONE_SECONDS)
                    elif due is not None:
                        self._timer.bound(waiter, due)
                    await waiter
        except TimeoutError:
            if self._done:
                return None  # the end did not come: the reply is whole, the connection dropped
            raise
        except OSError as error:  # the connection failed, or its compressed body did not decode
            if self._done:
                return None  # after [DONE]: the reply is whole, only the connection went
            raise self._errors.from_transport(error) from error
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
        self._timer.close()
        self._response.release()

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
