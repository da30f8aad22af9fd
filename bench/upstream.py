"""A cheap mock of an OpenAI-compatible server: ``python -m bench.upstream --port N``.

``POST <profile>/chat/completions`` answers with a fixed reply (see
``profiles``): streamed as OpenAI's chunks, the first after the profile's time
to first token and the rest a fixed gap apart, ending with a finish chunk, a
usage chunk when ``stream_options.include_usage`` is set, and ``data: [DONE]``;
or, without ``stream``, as one ``chat.completion`` after the whole reply's
time. It must not be the bottleneck, so it is a bare asyncio protocol on
uvloop with httptools: every byte it sends is built once per profile, and each
stream is a chain of timer callbacks scheduled on absolute times (no drift, no
task per stream).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from dataclasses import dataclass
from functools import cache
from typing import cast

import httptools
import uvloop

from bench.profiles import UpstreamProfile, parse_base_path, token_texts
from bench.system import raise_open_files_limit

_CREATED = 1_700_000_000
_PROMPT_TOKENS = 20


@dataclass(frozen=True, slots=True)
class _Reply:
    head: bytes
    chunks: tuple[bytes, ...]
    tail: bytes


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _sse(obj: object) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _chunk(delta: dict[str, str], finish: str | None) -> dict[str, object]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": _CREATED,
        "model": "bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _usage(tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": _PROMPT_TOKENS,
        "completion_tokens": tokens,
        "total_tokens": _PROMPT_TOKENS + tokens,
    }


@cache
def stream_reply(tokens: int, include_usage: bool) -> _Reply:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    chunks = []
    for i, text in enumerate(token_texts(tokens)):
        delta = {"role": "assistant", "content": text} if i == 0 else {"content": text}
        chunks.append(_chunked(_sse(_chunk(delta, None))))
    tail = _sse(_chunk({}, "stop"))
    if include_usage:
        usage = {**_chunk({}, None), "choices": [], "usage": _usage(tokens)}
        tail += _sse(usage)
    tail += b"data: [DONE]\n\n"
    return _Reply(head, tuple(chunks), _chunked(tail) + b"0\r\n\r\n")


@cache
def whole_reply(tokens: int) -> bytes:
    body = json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": _CREATED,
            "model": "bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(token_texts(tokens))},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(tokens),
        },
        separators=(",", ":"),
    ).encode()
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    return head % len(body) + body


def _plain(status: bytes, text: bytes) -> bytes:
    return b"HTTP/1.1 %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        len(text),
        text,
    )


class UpstreamProtocol(asyncio.Protocol):
    """One client connection; requests on it are answered one after another."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(_plain(b"400 Bad Request", b"bad request"))
            if self._transport is not None:
                self._transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        path = self._url.decode("latin-1").split("?", 1)[0]
        if path == "/health":
            self._write(_plain(b"200 OK", b"ok"))
            return
        parsed = parse_base_path(path)
        if parsed is None or parsed[1] != "/chat/completions":
            self._write(_plain(b"404 Not Found", b"not found"))
            return
        profile = parsed[0]
        try:
            request = json.loads(b"".join(self._body))
        except ValueError:
            self._write(_plain(b"400 Bad Request", b"body is not JSON"))
            return
        if request.get("stream"):
            options = request.get("stream_options") or {}
            self._stream(profile, stream_reply(profile.tokens, bool(options.get("include_usage"))))
        else:
            self._later(profile.reply_seconds, whole_reply(profile.tokens))

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _later(self, delay: float, data: bytes) -> None:
        if delay <= 0:
            self._write(data)
        else:
            self._timer = self._loop.call_later(delay, self._write, data)

    def _stream(self, profile: UpstreamProfile, reply: _Reply) -> None:
        if profile.instant:
            self._write(reply.head + b"".join(reply.chunks) + reply.tail)
            return
        self._write(reply.head)
        start = self._loop.time() + profile.ttft_ms / 1000
        self._schedule(start, profile.gap_ms / 1000, reply, 0)

    def _schedule(self, start: float, gap: float, reply: _Reply, index: int) -> None:
        self._timer = self._loop.call_at(start + index * gap, self._send, start, gap, reply, index)

    def _send(self, start: float, gap: float, reply: _Reply, index: int) -> None:
        self._timer = None
        if index + 1 < len(reply.chunks):
            self._write(reply.chunks[index])
            self._schedule(start, gap, reply, index + 1)
        else:
            self._write(reply.chunks[index] + reply.tail)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        print(f"upstream: listening on {host}:{port}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    raise_open_files_limit()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
