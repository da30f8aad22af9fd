"""The reply routes on ``ReplyLanes`` answer exactly what FastAPI's own handling answers.

The same requests, good and bad, go to two apps: one as served (the lanes
answer ``/chat``, ``/chat/stream`` and ``/v1/chat/completions``) and one with a
dependency override set, which sends every request through FastAPI. Statuses,
headers and bodies must match, once the ids and times each app makes are masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from agenthost.errors import ModelUnavailableError
from agenthost.llm.base import ModelRequest
from agenthost.server.app import create_app
from agenthost.server.lanes import Lane
from agenthost.server.schemas import SessionCreated
from agenthost.testing import FunctionModel, Reply

from .conftest import make_settings
from .test_auth import bearer, make_key

Case = Callable[[httpx.AsyncClient, dict[str, str], FastAPI], Awaitable[httpx.Response]]
_IDS = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")
_CREATED = re.compile(rb'"created":\d+')
_VOLATILE_HEADERS = {
    "x-request-id",
    "x-session-id",
    "x-run-id",
    "ratelimit-reset",
    "x-ratelimit-reset",
}
JSON = {"content-type": "application/json"}


def _reply(request: ModelRequest) -> Reply:
    text = request.messages[-1].content
    if text == "fail":
        return Reply("", error=ModelUnavailableError("The model server is down"))
    if text == "slow":
        return Reply("at last", delay=0.1)
    return Reply(f"You said: {text}")


class _RouteRecorder:
    """Notes which route object answered each request (the lanes put theirs in the scope)."""

    def __init__(self, app: ASGIApp, *, seen: list[str]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.seen.append(f"{scope['path']} {type(scope.get('route')).__name__}")


def _unused() -> None:  # pragma: no cover - only its presence in the overrides matters
    pass


@contextlib.asynccontextmanager
async def _app(*, lanes: bool) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, list[str]]]:
    app = create_app(make_settings(auth="keys"), model=FunctionModel(_reply, model_id="test"))
    seen: list[str] = []
    app.add_middleware(_RouteRecorder, seen=seen)
    if not lanes:
        app.dependency_overrides[_unused] = _unused
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agenthost") as client:
            yield app, client, seen


def _post(path: str, *, headers: dict[str, str] | None = None, **kwargs: object) -> Case:
    async def case(client: httpx.AsyncClient, auth: dict[str, str], app: FastAPI) -> httpx.Response:
        return await client.post(path, headers={**auth, **(headers or {})}, **kwargs)  # type: ignore[arg-type]

    return case


def _unauthenticated(path: str, **kwargs: object) -> Case:
    async def case(client: httpx.AsyncClient, auth: dict[str, str], app: FastAPI) -> httpx.Response:
        return await client.post(path, **kwargs)  # type: ignore[arg-type]

    return case


def _while_stopping(path: str, body: object) -> Case:
    async def case(client: httpx.AsyncClient, auth: dict[str, str], app: FastAPI) -> httpx.Response:
        app.state.stopping = True
        try:
            return await client.post(path, json=body, headers=auth)
        finally:
            app.state.stopping = False

    return case


def _busy(path: str) -> Case:
    """A message to a session whose reply is still being written."""

    async def case(client: httpx.AsyncClient, auth: dict[str, str], app: FastAPI) -> httpx.Response:
        created = await client.post("/sessions", json={}, headers=auth)
        body = {"message": "slow", "session_id": created.json()["session_id"]}
        slow = asyncio.create_task(client.post("/chat", json=body, headers=auth))
        while not app.state.services.runs.active:
            await asyncio.sleep(0.01)
        try:
            return await client.post(path, json={**body, "message": "hi"}, headers=auth)
        finally:
            await slow

    return case


def _reply_route_cases(path: str) -> list[tuple[str, Case]]:
    return [
        ("a reply", _post(path, json={"message": "hello"})),
        ("every field", _post(path, json={"message": "hi", "temperature": 0, "max_tokens": 9})),
        (
            "the same key twice",
            _post(path, json={"message": "a"}, headers={"Idempotency-Key": "k"}),
        ),
        ("the key again", _post(path, json={"message": "a"}, headers={"Idempotency-Key": "k"})),
        (
            "the key, another body",
            _post(path, json={"message": "b"}, headers={"Idempotency-Key": "k"}),
        ),
        (
            "a key too long",
            _post(path, json={"message": "a"}, headers={"Idempotency-Key": "k" * 256}),
        ),
        (
            "a key too long, a bad body",
            _post(path, json={"message": ""}, headers={"Idempotency-Key": "k" * 256}),
        ),
        ("an empty message", _post(path, json={"message": ""})),
        ("5001 characters", _post(path, json={"message": "x" * 5001})),
        ("temperature 2.5", _post(path, json={"message": "hi", "temperature": 2.5})),
        ("wrong types", _post(path, json={"message": 5, "temperature": "hot", "max_tokens": 1.5})),
        ("an unknown field", _post(path, json={"message": "hi", "colour": "red"})),
        ("max_tokens over the limit", _post(path, json={"message": "hi", "max_tokens": 10**9})),
        ("an unknown session", _post(path, json={"message": "hi", "session_id": "nope"})),
        ("an unknown agent", _post(path, json={"message": "hi", "agent": "nobody"})),
        ("a failing model", _post(path, json={"message": "fail"})),
        ("malformed JSON", _post(path, content=b'{"message": ', headers=JSON)),
        ("NaN", _post(path, content=b'{"message": "hi", "temperature": NaN}', headers=JSON)),
        (
            "a huge number",
            _post(
                path, content=b'{"message": "hi", "max_tokens": 1' + b"0" * 30 + b"}", headers=JSON
            ),
        ),
        ("a lone surrogate", _post(path, content=b'{"message": "\\ud83c"}', headers=JSON)),
        ("not UTF-8", _post(path, content=b'{"message": "\xff"}', headers=JSON)),
        ("no body", _post(path, headers=JSON)),
        ("null", _post(path, content=b"null", headers=JSON)),
        ("a list", _post(path, json=[{"message": "hi"}])),
        (
            "charset",
            _post(
                path,
                content=b'{"message":"hi"}',
                headers={"content-type": "application/json; charset=utf-8"},
            ),
        ),
        (
            "a +json type",
            _post(
                path,
                content=b'{"message":"hi"}',
                headers={"content-type": "application/vnd.api+json"},
            ),
        ),
        (
            "text/...+json",
            _post(path, content=b'{"message":"hi"}', headers={"content-type": "text/x+json"}),
        ),
        ("no key", _unauthenticated(path, json={"message": "hi"})),
        ("no key, malformed JSON", _unauthenticated(path, content=b"{", headers=JSON)),
        ("a bad key", _unauthenticated(path, json={"message": "hi"}, headers=bearer("ah_bad"))),
        ("stopping", _while_stopping(path, {"message": "hi"})),
        ("a busy session", _busy(path)),
    ]


def _completion(**extra: object) -> dict[str, object]:
    return {"model": "assistant", "messages": [{"role": "user", "content": "hi"}], **extra}


COMPLETIONS = "/v1/chat/completions"
CASES: list[tuple[str, Case]] = [
    *_reply_route_cases("/chat"),
    *_reply_route_cases("/chat/stream"),
    ("completion", _post(COMPLETIONS, json=_completion())),
    ("streamed completion", _post(COMPLETIONS, json=_completion(stream=True))),
    (
        "completion with usage",
        _post(COMPLETIONS, json=_completion(stream=True, stream_options={"include_usage": True})),
    ),
    (
        "completion in a session",
        _post(COMPLETIONS, json=_completion(), headers={"X-Session-ID": "nope"}),
    ),
    (
        "session id too long",
        _post(COMPLETIONS, json=_completion(), headers={"X-Session-ID": "s" * 65}),
    ),
    ("an unknown model", _post(COMPLETIONS, json=_completion(model="gpt-nothing"))),
    ("no messages", _post(COMPLETIONS, json=_completion(messages=[]))),
    ("a bad role", _post(COMPLETIONS, json=_completion(messages=[{"role": "x", "content": "hi"}]))),
    (
        "failing, streamed",
        _post(
            COMPLETIONS,
            json=_completion(stream=True, messages=[{"role": "user", "content": "fail"}]),
        ),
    ),
    ("completion, malformed JSON", _post(COMPLETIONS, content=b"[", headers=JSON)),
    ("completion, no key", _unauthenticated(COMPLETIONS, json=_completion())),
    ("completion, stopping", _while_stopping(COMPLETIONS, _completion())),
]


def _masked(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {
        name: value for name, value in response.headers.items() if name not in _VOLATILE_HEADERS
    }
    body = _CREATED.sub(b'"created":0', _IDS.sub(b"<id>", response.content))
    return response.status_code, headers, body


async def _answers(*, lanes: bool) -> tuple[list[tuple[int, dict[str, str], bytes]], list[str]]:
    async with _app(lanes=lanes) as (app, client, seen):
        auth = bearer(await make_key(app, "lanes"))
        answers = [_masked(await case(client, auth, app)) for _, case in CASES]
        return answers, seen


async def test_the_lanes_answer_what_fastapi_answers() -> None:
    through_lanes, lane_routes = await _answers(lanes=True)
    through_fastapi, fastapi_routes = await _answers(lanes=False)
    lanes = {"/chat Lane", "/chat/stream Lane", "/v1/chat/completions Lane"}
    assert set(lane_routes) == {*lanes, "/sessions APIRoute"}  # the reply routes on lanes...
    assert not lanes & set(fastapi_routes)  # ...and none with an override set
    for (name, _), lane, fastapi in zip(CASES, through_lanes, through_fastapi, strict=True):
        assert lane == fastapi, name
    statuses = {status for status, _, _ in through_lanes}
    assert statuses >= {200, 400, 401, 404, 409, 422, 502, 503}  # the cases cover the errors


async def test_a_lane_answers_under_a_root_path() -> None:
    """Mounted under a prefix (a proxy's ``root_path``), the paths match without it."""
    async with _app(lanes=True) as (app, _, seen):
        auth = bearer(await make_key(app, "lanes"))
        transport = httpx.ASGITransport(app=app, root_path="/api")
        async with httpx.AsyncClient(transport=transport, base_url="http://agenthost") as client:
            response = await client.post("/api/chat", json={"message": "hi"}, headers=auth)
    assert response.json()["response"] == "You said: hi"
    assert seen == ["/api/chat Lane"]


async def _with_a_query(body: SessionCreated, q: int) -> None:  # pragma: no cover
    pass


async def _without_a_body(request: Request) -> None:  # pragma: no cover
    pass


def _sync_dependency(request: Request) -> None:  # pragma: no cover
    pass


async def _with_a_sync_dependency(  # pragma: no cover
    body: SessionCreated, x: Annotated[None, Depends(_sync_dependency)]
) -> None:
    pass


def test_a_lane_refuses_an_endpoint_it_cannot_fill() -> None:
    """Refused when the app is built, not at the first request."""
    with pytest.raises(TypeError, match="cannot fill the parameter 'q'"):
        Lane("/x", _with_a_query)
    with pytest.raises(TypeError, match="takes a request body"):
        Lane("/x", _without_a_body)
    with pytest.raises(TypeError, match="async def f"):
        Lane("/x", _with_a_sync_dependency)
    with pytest.raises(TypeError, match="async def f"):
        Lane("/x", _with_a_query, dependencies=[_sync_dependency])  # type: ignore[list-item]
