"""``AccessMiddleware``: per request, its id, one access-log line, the request metrics and a span.

Every response carries ``X-Request-ID``: the client's when it is sane (1-128 of
``A-Za-z0-9._:-``), else a new one; and the headers the request's handling
asked for (``RateLimit-*``, see ``auth.add_response_headers``).

Pure ASGI, and cheap on the streaming path: one middleware (one ``send``
wrapper per message, not one per concern) that looks at the response's start
(status, content type) and at its last body message, never at each chunk. The
line and the metrics are recorded when the response ends (for an event stream,
when the stream ends), just before its last bytes are sent, so a client that
has read a whole response finds it counted. Fields:

    method, route (the matched template: ``/sessions/{session_id}``, or
    ``unmatched``), path, status, latency_ms, stream (an SSE response), and the
    log context's ids: request_id, key_prefix, and session_id and run_id when
    the request started a run.

``GET /metrics`` itself is left out of the request metrics (a scrape would
count the scrapes) and logged at debug level only. With tracing on, the
request gets a server span and its response an ``X-Trace-ID`` header.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agenthost.observability import context
from agenthost.observability.metrics import UNMATCHED_ROUTE
from agenthost.stores.ids import new_hex_id

if TYPE_CHECKING:
    from agenthost.observability.telemetry import Telemetry

logger = logging.getLogger("agenthost.access")

METRICS_ROUTE = "/metrics"
# Ids a request's handling may set; each request starts without them, so that a
# caller running requests in its own task (an in-process ASGI client) sees no leftovers.
_REQUEST_IDS = (context.session_id, context.run_id, context.key_prefix)
_EVENT_STREAM = b"text/event-stream"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
RESPONSE_HEADERS = "response_headers"
BODY_SEND = "agenthost.body_send"
"""Scope key: the server's own ``send``, for the middle of a long body.

Every layer of the app (Starlette's error middleware outside this one; CORS,
Starlette's exception handling and this middleware's own observer inside)
looks at a response's start or end only; a streamed response may send the
messages in between, ``more_body`` set, straight to the server
(``sse.DirectWriter``). ``AgentHostAPI`` puts the server's ``send`` in the
scope; an app without it gets the ``send`` this middleware was given.
"""
_SERVER_SEND = "agenthost.server_send"


class AgentHostAPI(FastAPI):
    """FastAPI, keeping the server's ``send`` in the scope for ``BODY_SEND``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope[_SERVER_SEND] = send
        try:
            await super().__call__(scope, receive, send)
        finally:
            scope.pop(_SERVER_SEND, None)  # a reference cycle otherwise (see below)


class AccessMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope[BODY_SEND] = scope.pop(_SERVER_SEND, send)
        scope.setdefault("state", {})["request_id"] = request_id
        context.request_id.set(request_id)
        app = scope.get("app")
        telemetry: Telemetry | None = getattr(getattr(app, "state", None), "telemetry", None)
        try:
            if telemetry is None:  # not started (or stopped): the id, nothing to observe
                await self.app(scope, receive, _IdSender(scope, request_id, send).send)
                return
            await _Exchange(scope, request_id, telemetry).run(self.app, receive, send)
        finally:
            # ``send`` holds the server's request object, which holds the scope: left in
            # the scope, it would make a reference cycle of every request, freed only by
            # the garbage collector (a pass of tens of milliseconds every few seconds).
            scope.pop(BODY_SEND, None)


def _request_id(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            given = value.decode("latin-1")
            return given if _SANE_ID.match(given) else new_hex_id()
    return new_hex_id()


def _response_headers(scope: Scope, request_id: str) -> list[tuple[bytes, bytes]]:
    """``X-Request-ID`` and the headers the request's handling asked for."""
    extra: dict[str, str] = scope.get("state", {}).get(RESPONSE_HEADERS, {})
    return [
        (b"x-request-id", request_id.encode()),
        *((name.lower().encode(), value.encode()) for name, value in extra.items()),
    ]


class _IdSender:
    def __init__(self, scope: Scope, request_id: str, send: Send) -> None:
        self.scope = scope
        self.request_id = request_id
        self.downstream = send

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [
                *message.get("headers", []),
                *_response_headers(self.scope, self.request_id),
            ]
        await self.downstream(message)


class _Exchange:
    """One request and its response, observed from arrival to the response's end."""

    def __init__(self, scope: Scope, request_id: str, telemetry: Telemetry) -> None:
        self.scope = scope
        self.request_id = request_id
        self.telemetry = telemetry
        self.started = time.perf_counter()
        self.status = 500  # what the client gets if the app fails before answering
        self.stream = False
        self.done = False
        tracing = telemetry.tracing
        self.span = tracing.start_request(scope) if tracing is not None else None

    async def run(self, app: ASGIApp, receive: Receive, send: Send) -> None:
        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._started(message)
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                self._finish()
            await send(message)

        tracing = self.telemetry.tracing
        token = tracing.activate(self.span) if tracing and self.span else None
        ids = [var.set(None) for var in _REQUEST_IDS]
        try:
            await app(self.scope, receive, observed_send)
        finally:
            self._finish()
            for var, previous in zip(_REQUEST_IDS, ids, strict=True):
                var.reset(previous)
            if tracing is not None and token is not None:
                tracing.restore(token)

    def _started(self, message: Message) -> None:
        self.status = int(message["status"])
        headers = message.setdefault("headers", [])
        for name, value in headers:
            if name.lower() == b"content-type":
                self.stream = value.startswith(_EVENT_STREAM)
                break
        if self.stream:
            self.telemetry.metrics.stream_opened()
        added = _response_headers(self.scope, self.request_id)
        if self.span is not None and self.telemetry.tracing is not None:
            added.append((b"x-trace-id", self.telemetry.tracing.trace_id(self.span)))
        message["headers"] = [*headers, *added]

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        seconds = time.perf_counter() - self.started
        method = str(self.scope["method"])
        template = getattr(self.scope.get("route"), "path", None)
        route = template if isinstance(template, str) else UNMATCHED_ROUTE
        metrics = self.telemetry.metrics
        if self.stream:
            metrics.stream_closed()
        scrape = route == METRICS_ROUTE
        if not scrape:
            metrics.observe_request(route, method, self.status, seconds)
        if self.span is not None and self.telemetry.tracing is not None:
            self.telemetry.tracing.end_request(
                self.span, method=method, route=template, status=self.status
            )
        level = logging.DEBUG if scrape else logging.INFO
        if logger.isEnabledFor(level):
            fields: dict[str, object] = {
                "method": method,
                "route": route,
                "path": self.scope["path"],
                "status": self.status,
                "latency_ms": round(seconds * 1000, 1),
            }
            if self.stream:
                fields["stream"] = True
            logger.log(level, "%s %s %d", method, self.scope["path"], self.status, extra=fields)
