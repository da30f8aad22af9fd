"""``BodyLimitMiddleware``: limits on what a request body may be.

Pure ASGI (not ``BaseHTTPMiddleware``) because it sits on the streaming path:
it must not buffer responses or add a task per request. (Request ids are
``access.AccessMiddleware``'s.)

- A body over ``max_bytes`` is refused with 413, from
  ``Content-Length`` before reading (the server holds the client to it), or
  while reading a chunked body here; a body that is not JSON is refused with 415.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agenthost.server.errors import envelope

_JSON_TYPES = ("application/json", "application/merged-patch+json")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _refuse(scope, send, 413, self._too_large())
            return
        has_body = (length is not None and int(length) > 0) or _chunked(scope)
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if has_body and content_type not in _JSON_TYPES and not content_type.endswith("+json"):
            message = "Unsupported media type: send JSON (Content-Type: application/json)"
            await _refuse(scope, send, 415, message)
            return
        if _chunked(scope):
            # No declared length: read it here (at most max_bytes), then hand it on.
            body = await self._read_limited(receive)
            if body is None:
                await _refuse(scope, send, 413, self._too_large())
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    async def _read_limited(self, receive: Receive) -> bytes | None:
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(parts)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)

    def _too_large(self) -> str:
        return f"Request body too large: the limit is {self.max_bytes} bytes"


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # after the body: wait for the disconnect
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _chunked(scope: Scope) -> bool:
    return "chunked" in (_header(scope, b"transfer-encoding") or "").lower()


async def _refuse(scope: Scope, send: Send, status: int, message: str) -> None:
    """Answer with the error envelope without calling the app (or OpenAI's shape on /v1)."""
    request_id = scope.get("state", {}).get("request_id")
    body = envelope(str(scope.get("path", "")), status, message, request_id=request_id)
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
