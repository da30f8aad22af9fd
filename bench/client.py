"""The load generator's HTTP/1.1 client: one keep-alive connection, one request at a time.

A bare asyncio protocol on httptools (the parser uvicorn uses) rather than an
HTTP client library, so that thousands of streams cost the generator little
and the server, not the generator, is what gets measured. Streamed replies are
parsed as Server-Sent Events (``event``/``data`` fields, blank line ends an
event, comments skipped); each ``token`` event's text is checked against the
reply the upstream sent, and the arrival time of every token is kept.
"""

from __future__ import annotations

import asyncio
import json
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate
from typing import cast

import httptools

from bench.profiles import token_texts


@dataclass
class RequestResult:
    """One request as the client saw it; times are ``time.monotonic()`` seconds."""

    sent: float
    token_times: list[float] = field(default_factory=list)
    """When each token of the reply arrived (its last byte), in order."""
    done: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Expected:
    """The reply a correct server relays: its text, and where each token ends in it."""

    text: str
    ends: tuple[int, ...]

    @classmethod
    def of(cls, tokens: int) -> Expected:
        texts = token_texts(tokens)
        return cls("".join(texts), tuple(accumulate(len(t) for t in texts)))

    def tokens_within(self, length: int) -> int:
        return bisect_right(self.ends, length)


def build_request(host: str, port: int, path: str, body: dict[str, object]) -> bytes:
    payload = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\n"
        "content-type: application/json\r\naccept: */*\r\n"
        f"content-length: {len(payload)}\r\n\r\n"
    ).encode() + payload


def _error_text(body: bytes) -> str:
    """The error envelope's message (not its request id, so that errors group), or the body."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        error = error.get("message")
    text = error if isinstance(error, str) else body.decode("utf-8", "replace")
    return text[:120]


class Connection(asyncio.Protocol):
    """``await request(raw)`` sends it and resolves when the whole response is in."""

    def __init__(self, expected: Expected, *, streaming: bool) -> None:
        self._loop = asyncio.get_running_loop()
        self._expected = expected
        self._streaming = streaming
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self.closed = False
        self._result: RequestResult | None = None
        self._waiter: asyncio.Future[RequestResult] | None = None
        self._status = 0
        self._body: list[bytes] = []
        self._buffer = b""
        self._parts: list[str] = []
        self._received = 0
        self._finished = False
        self._now = 0.0

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._transport = None
        self._complete("connection lost" + (f": {exc}" if exc else ""))

    def data_received(self, data: bytes) -> None:
        self._now = time.monotonic()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._complete(f"bad HTTP response: {exc}")
            self.close()

    # -- the request
    def request(self, raw: bytes) -> asyncio.Future[RequestResult]:
        assert self._transport is not None
        assert self._waiter is None
        self._result = RequestResult(sent=time.monotonic())
        self._waiter = self._loop.create_future()
        self._status = 0
        self._body = []
        self._buffer = b""
        self._parts = []
        self._received = 0
        self._finished = False
        self._transport.write(raw)
        return self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # -- httptools callbacks
    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self._streaming and self._status == 200:
            self._feed_sse(body)
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._status != 200:
            self._complete(f"HTTP {self._status}: {_error_text(b''.join(self._body))}")
        elif self._streaming:
            self._complete(None if self._finished else "stream ended without a done event")
        else:
            self._whole(b"".join(self._body))

    # -- replies
    def _whole(self, body: bytes) -> None:
        try:
            text = json.loads(body)["response"]
        except (ValueError, KeyError, TypeError):
            self._complete("reply is not JSON with a 'response'")
            return
        if text != self._expected.text:
            self._complete("wrong reply text")
            return
        assert self._result is not None
        self._result.token_times = [self._now] * len(self._expected.ends)
        self._complete(None)

    def _feed_sse(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        start = 0
        while (end := buffer.find(b"\n\n", start)) >= 0:
            self._event(buffer[start:end])
            start = end + 2
        self._buffer = buffer[start:]

    def _event(self, block: bytes) -> None:
        kind = b"message"
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if not line or line[0] == 0x3A:  # a comment (": ping")
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                kind = value
        if not data:
            return
        if kind == b"token":
            self._token(b"\n".join(data).decode())
        elif kind == b"done":
            self._finished = True
        elif kind == b"error":
            self._complete("error event: " + b"\n".join(data).decode()[:200])

    def _token(self, text: str) -> None:
        result = self._result
        if result is None:
            return
        self._parts.append(text)
        before = self._received
        self._received += len(text)
        complete = self._expected.tokens_within(self._received)
        if complete > len(result.token_times):
            result.token_times.extend([self._now] * (complete - len(result.token_times)))
        if before == 0 or complete == len(self._expected.ends):
            self._check_text()

    def _check_text(self) -> None:
        text = "".join(self._parts)
        if not self._expected.text.startswith(text):
            self._complete("wrong token text")

    def _complete(self, error: str | None) -> None:
        result, waiter = self._result, self._waiter
        self._result = self._waiter = None
        if result is None or waiter is None:
            return
        result.done = time.monotonic() if self.closed else self._now
        if error is None and len(result.token_times) != len(self._expected.ends):
            error = f"{len(result.token_times)} of {len(self._expected.ends)} tokens"
        result.error = error
        if error is not None:
            self.close()  # what is left of this response must not be read as the next one's
        if not waiter.done():
            waiter.set_result(result)
