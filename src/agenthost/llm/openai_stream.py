"""Reading a streamed ``/chat/completions`` reply: its ``data:`` lines, parsed as JSON.

``ChunkReader`` takes the raw response the ``openai`` SDK client hands back and
does what the SDK's typed stream would, for much less CPU per token: it reads
the bytes itself (one await per network read, however many chunks it holds),
splits the server-sent-event lines and ``json.loads``-es each ``data:`` line
into a plain dict, with no pydantic model per chunk. A JSON error, or an
``error`` object sent mid-stream, raises as the SDK would, so ``openai_errors``
maps both the same way.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import httpx2
import openai

from agenthost.llm.openai_errors import UpstreamErrors

__all__ = ["Chunk", "ChunkReader"]

Chunk = dict[str, Any]
"""One parsed stream chunk (a ``ChatCompletionChunk`` as JSON)."""


class ChunkReader:
    """The chunks of a streamed reply: its ``data:`` lines, each parsed as JSON.

    It reads the response's bytes itself, so a network read carrying several
    chunks costs one await, and no typed model is built per chunk.
    """

    def __init__(self, response: httpx2.Response, errors: UpstreamErrors) -> None:
        self._response = response
        self._errors = errors
        self._bytes = response.aiter_bytes()
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
                data = await anext(self._bytes)
            except StopAsyncIteration:
                self._done = True
                data = b"\n"
            except httpx2.TransportError as error:
                raise openai.APIConnectionError(request=self._response.request) from error
            self._feed(data)
        # Parsed one at a time, so a bad chunk fails only after those before it are used.
        return self._parse(self._ready.popleft())

    async def aclose(self) -> None:
        """Close the response; before the end, that drops the connection (nothing more is read)."""
        await self._bytes.aclose()
        await self._response.aclose()

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

    def _parse(self, payload: bytes) -> Chunk:
        try:
            chunk = json.loads(payload)
        except ValueError as error:
            raise self._errors.malformed_chunk() from error
        if not isinstance(chunk, dict):
            raise self._errors.malformed_chunk()
        reported = chunk.get("error")
        if reported:
            message = reported.get("message") if isinstance(reported, dict) else None
            if not isinstance(message, str) or not message:
                message = "An error occurred during streaming"
            raise openai.APIError(message, self._response.request, body=reported)
        return chunk

    async def _drain(self) -> None:
        """Read what follows ``[DONE]``, so that an HTTP/1.1 connection goes back to the pool."""
        if self._response.is_closed:
            return
        try:
            async for _ in self._bytes:
                pass
        except httpx2.TransportError:
            pass
