"""The baselines: a bare relay from the upstream to SSE, ``python -m bench.relay --client aiohttp``.

A minimal Starlette app on the same uvicorn stack as agenthost (uvloop,
httptools, one worker) that does only what any chat relay must:
``POST /chat/stream`` sends ``{"message"}`` upstream as a streaming chat
completion, parses each chunk's JSON and forwards its text as an SSE ``token``
event (then ``done``); ``POST /chat`` asks for the whole completion and returns
``{"response"}``. It runs once with an aiohttp client and once with httpx,
so agenthost's cost per token can be set against the cheapest way to do the job.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import aiohttp
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from bench.system import raise_open_files_limit

MAX_CONNECTIONS = 4096
_DONE = b"event: done\ndata: 0\n\n"
_END = (b"[DONE]", "[DONE]")


class UpstreamClient(Protocol):
    def data(self, url: str, payload: dict[str, object]) -> AsyncIterator[str | bytes]:
        """What follows ``data:`` on each line of the streamed response."""
        ...

    async def whole(self, url: str, payload: dict[str, object]) -> dict[str, object]: ...

    async def aclose(self) -> None: ...


class AiohttpUpstream:
    def __init__(self) -> None:
        connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, limit_per_host=MAX_CONNECTIONS)
        timeout = aiohttp.ClientTimeout(total=None, connect=10)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)

    async def data(self, url: str, payload: dict[str, object]) -> AsyncIterator[str | bytes]:
        async with self._session.post(url, json=payload) as response:
            response.raise_for_status()
            async for line in response.content:
                if line.startswith(b"data:"):
                    yield line[5:].strip()

    async def whole(self, url: str, payload: dict[str, object]) -> dict[str, object]:
        async with self._session.post(url, json=payload) as response:
            response.raise_for_status()
            body: dict[str, object] = await response.json()
            return body

    async def aclose(self) -> None:
        await self._session.close()


class HttpxUpstream:
    def __init__(self) -> None:
        limits = httpx.Limits(
            max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
        )
        timeout = httpx.Timeout(None, connect=10)
        self._client = httpx.AsyncClient(limits=limits, timeout=timeout)

    async def data(self, url: str, payload: dict[str, object]) -> AsyncIterator[str | bytes]:
        async with self._client.stream("POST", url, json=payload) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    yield line[5:].strip()

    async def whole(self, url: str, payload: dict[str, object]) -> dict[str, object]:
        response = await self._client.post(url, json=payload)
        response.raise_for_status()
        body: dict[str, object] = response.json()
        return body

    async def aclose(self) -> None:
        await self._client.aclose()


CLIENTS: dict[str, Callable[[], UpstreamClient]] = {
    "aiohttp": AiohttpUpstream,
    "httpx": HttpxUpstream,
}


def _payload(message: str, *, stream: bool) -> dict[str, object]:
    return {
        "model": "bench",
        "messages": [{"role": "user", "content": message}],
        "stream": stream,
    }


def _token_event(text: str) -> bytes:
    return b"event: token\ndata: " + text.replace("\n", "\ndata: ").encode() + b"\n\n"


async def _events(client: UpstreamClient, url: str, message: str) -> AsyncIterator[bytes]:
    async for data in client.data(url, _payload(message, stream=True)):
        if data in _END:
            break
        choices = json.loads(data)["choices"]
        if choices and (text := choices[0]["delta"].get("content")):
            yield _token_event(text)
    yield _DONE


def create_app(client_name: str, upstream_base: str) -> Starlette:
    url = upstream_base.rstrip("/") + "/chat/completions"
    holder: list[UpstreamClient] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        holder.append(CLIENTS[client_name]())
        try:
            yield
        finally:
            await holder[0].aclose()

    async def chat_stream(request: Request) -> Response:
        message = (await request.json())["message"]
        return StreamingResponse(
            _events(holder[0], url, message), media_type="text/event-stream; charset=utf-8"
        )

    async def chat(request: Request) -> Response:
        message = (await request.json())["message"]
        body = await holder[0].whole(url, _payload(message, stream=False))
        choices = body["choices"]
        assert isinstance(choices, list)
        return JSONResponse({"response": choices[0]["message"]["content"]})

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    lifespan_factory: Callable[[Starlette], AbstractAsyncContextManager[None]] = lifespan
    return Starlette(
        routes=[
            Route("/chat/stream", chat_stream, methods=["POST"]),
            Route("/chat", chat, methods=["POST"]),
            Route("/health", health),
        ],
        lifespan=lifespan_factory,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--client", choices=sorted(CLIENTS), required=True)
    parser.add_argument("--upstream", required=True, help="base URL, ending in /v1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    raise_open_files_limit()
    uvicorn.run(
        create_app(args.client, args.upstream),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
