"""The real app on a model server that misbehaves: what the user sees, and what is kept.

An ``OpenAIChatModel`` with short timeouts talks to the loopback mock server,
which is slow to start, stalls or resets mid-stream, answers 429 and 500, or
sends malformed chunks. Each case checks the status (or the ``error`` event of
a stream), that the message says what to do and nothing of a stack trace, that
it came within the configured timeouts, and that the user's message and any
partial reply are stored with the run marked failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI

from agenthost.llm.breaker import CircuitBreakerModel
from agenthost.server.app import create_app
from agenthost.stores.base import RunId, RunRecord
from tests.support.metrics import Scrape
from tests.support.mock_openai import (
    Drop,
    ErrorReply,
    MockOpenAIServer,
    Pause,
    Reply,
    StreamReply,
    role_chunk,
    text_chunk,
    text_reply,
)
from tests.support.openai_models import API_KEY, Models, wait_for_disconnect
from tests.support.sse import events_of, parse, tokens

from .conftest import make_settings, running_app, served_app

FIRST_TOKEN = 0.3
IDLE = 0.3
RETRIES = 1
SLACK = 2.0
"""Generous room over a configured budget, for a loaded machine."""
COOLDOWN = 1.0
PARTIAL = ("Once upon", " a time")
Endpoint = Literal["chat", "stream"]
ENDPOINTS: tuple[Endpoint, ...] = ("chat", "stream")


@dataclass
class Attempt:
    """One message sent through ``/chat`` or ``/chat/stream``, seen the same way."""

    status: int
    error: str | None
    text: str
    seconds: float
    headers: httpx.Headers
    events: list[str] = field(default_factory=list)


@pytest.fixture
async def server() -> AsyncIterator[MockOpenAIServer]:
    async with MockOpenAIServer() as server:
        yield server


@contextlib.asynccontextmanager
async def app_on(
    server: MockOpenAIServer, **timeouts: float
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with an ``OpenAIChatModel`` pointed at ``server`` (short timeouts, one retry)."""
    budgets: dict[str, Any] = {
        "first_token_timeout": FIRST_TOKEN,
        "idle_timeout": IDLE,
        "total_timeout": 5.0,
        "max_retries": RETRIES,
    }
    async with Models(server) as models:
        model = models.make(**(budgets | timeouts))
        async with running_app(model) as (app, client):
            yield app, client


async def send(client: httpx.AsyncClient, endpoint: Endpoint, session_id: str) -> Attempt:
    body = {"message": "Tell me a story", "session_id": session_id}
    started = time.monotonic()
    response = await client.post("/chat" if endpoint == "chat" else "/chat/stream", json=body)
    seconds = time.monotonic() - started
    if endpoint == "chat":
        data = response.json()
        return Attempt(
            response.status_code,
            data.get("error"),
            data.get("response", ""),
            seconds,
            response.headers,
        )
    events = parse(response.text).events
    assert [e.event for e in events[:2]] == ["session", "run"]
    last = events[-1]
    error = json.loads(last.data) if last.event == "error" else None
    if error is not None:
        assert set(error) == {"error", "detail", "request_id"}
        assert error["request_id"] == response.headers["x-request-id"]
    return Attempt(
        response.status_code,
        error["error"] if error else None,
        tokens(events),
        seconds,
        response.headers,
        [e.event for e in events],
    )


async def new_session(client: httpx.AsyncClient) -> str:
    response = await client.post("/sessions")
    assert response.status_code == 201
    session_id: str = response.json()["session_id"]
    return session_id


async def stored(
    app: FastAPI, client: httpx.AsyncClient, session_id: str
) -> tuple[list[tuple[str, str]], list[RunRecord]]:
    """The session's messages as (role, content), and the runs they belong to."""
    session = (await client.get(f"/sessions/{session_id}")).json()
    messages = [(m["role"], m["content"]) for m in session["messages"]]
    run_ids = dict.fromkeys(m["run_id"] for m in session["messages"] if m["role"] == "user")
    store = app.state.services.store
    return messages, [await store.get_run(RunId(run_id)) for run_id in run_ids]


def assert_actionable(message: str | None, *hints: str) -> None:
    """A message that says what happened and what to do, and nothing of the internals."""
    assert message is not None
    for hint in hints:
        assert hint in message, message
    for leak in ("Traceback", 'File "', "openai.", "aiohttp", "Error code:", API_KEY):
        assert leak not in message, message


def assert_failed(attempt: Attempt, status: int) -> None:
    """``/chat`` answers ``status``; a stream has already said 200 and ends with ``error``."""
    if attempt.events:
        assert attempt.status == 200
        assert attempt.events[-1] == "error"
        assert "done" not in attempt.events
    else:
        assert attempt.status == status


# -- before the first token: retried, then a status --------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_slow_start_is_a_first_token_timeout(
    server: MockOpenAIServer, endpoint: Endpoint
) -> None:
    slow = StreamReply(text_reply("late").steps, headers_delay=10)
    server.add(slow, slow)
    async with app_on(server) as (app, client):
        session_id = await new_session(client)
        attempt = await send(client, endpoint, session_id)
        messages, runs = await stored(app, client, session_id)
    assert_failed(attempt, 504)
    assert_actionable(
        attempt.error, "sent no output within 0.3s", "AGENTHOST_OPENAI_FIRST_TOKEN_TIMEOUT"
    )
    budget = FIRST_TOKEN * (RETRIES + 1)
    assert budget * 0.9 <= attempt.seconds < budget + SLACK
    assert len(server.requests) == RETRIES + 1
    assert messages == [("user", "Tell me a story")]
    assert [(run.status, run.error) for run in runs] == [("failed", attempt.error)]


@pytest.mark.parametrize(
    "fault",
    [
        ErrorReply(429, "slow down", headers={"Retry-After": "0"}),
        ErrorReply(500, "boom"),
        ErrorReply(503, "overloaded"),
        StreamReply((Drop(),)),
        StreamReply(("{not json",)),
        StreamReply(text_reply("late").steps, headers_delay=10),
    ],
    ids=["429", "500", "503", "reset", "malformed", "slow_start"],
)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_fault_before_the_first_token_is_retried_unseen(
    server: MockOpenAIServer, endpoint: Endpoint, fault: Reply
) -> None:
    server.add(fault, text_reply("Once upon", " a time."))
    async with app_on(server) as (app, client):
        session_id = await new_session(client)
        attempt = await send(client, endpoint, session_id)
        messages, runs = await stored(app, client, session_id)
    assert attempt.status == 200
    assert attempt.error is None
    assert attempt.text == "Once upon a time."
    assert attempt.seconds < FIRST_TOKEN + SLACK
    assert len(server.requests) == 2
    assert messages == [("user", "Tell me a story"), ("assistant", "Once upon a time.")]
    assert [run.status for run in runs] == ["completed"]


@pytest.mark.parametrize(
    ("faults", "hints", "retry_after"),
    [
        (
            [ErrorReply(429, "slow down", headers={"Retry-After": "120"})],
            ["rate limiting requests (429); retry after 120s"],
            "120",
        ),
        ([ErrorReply(429, "slow down")] * 2, ["rate limiting", "try again later"], None),
        ([ErrorReply(500, "boom")] * 2, ["failed (HTTP 500). Try again later."], "5"),
        (
            [ErrorReply(401, f"Incorrect API key provided: {API_KEY}")],
            ["rejected the API key (401). Check OPENAI_API_KEY."],
            None,
        ),
    ],
    ids=["429_retry_after", "429_persistent", "500_persistent", "401"],
)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_persistent_fault_is_502_and_says_what_to_do(
    server: MockOpenAIServer,
    endpoint: Endpoint,
    faults: list[ErrorReply],
    hints: list[str],
    retry_after: str | None,
) -> None:
    server.add(*faults)
    async with app_on(server) as (app, client):
        session_id = await new_session(client)
        attempt = await send(client, endpoint, session_id)
        messages, runs = await stored(app, client, session_id)
    assert_failed(attempt, 502)
    assert_actionable(attempt.error, *hints)
    if endpoint == "chat":
        assert attempt.headers.get("retry-after") == retry_after
    assert attempt.seconds < SLACK
    assert len(server.requests) == len(faults)  # a long Retry-After is left to the client
    assert messages == [("user", "Tell me a story")]
    assert [(run.status, run.error) for run in runs] == [("failed", attempt.error)]


# -- after the first token: never retried, the partial reply is kept ------------------


@pytest.mark.parametrize(
    ("ending", "status", "hints"),
    [
        (Pause(30), 504, ["stopped sending output for 0.3s mid-reply", "IDLE_TIMEOUT"]),
        (Drop(), 502, ["dropped the connection", "Check that it is running"]),
        ("{not json", 502, ["malformed stream chunk", "OpenAI-compatible server"]),
    ],
    ids=["stall", "reset", "malformed"],
)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_fault_mid_stream_keeps_the_partial_reply(
    server: MockOpenAIServer,
    endpoint: Endpoint,
    ending: Pause | Drop | str,
    status: int,
    hints: list[str],
) -> None:
    server.add(StreamReply((role_chunk(), *map(text_chunk, PARTIAL), ending, text_chunk("!"))))
    async with app_on(server) as (app, client):
        session_id = await new_session(client)
        attempt = await send(client, endpoint, session_id)
        messages, runs = await stored(app, client, session_id)
    assert_failed(attempt, status)
    assert_actionable(attempt.error, *hints)
    assert attempt.seconds < IDLE + SLACK
    if endpoint == "stream":
        assert attempt.text == "".join(PARTIAL)
        assert attempt.events[2:] == ["token", "token", "error"]
    assert len(server.requests) == 1  # text was shown: a retry would repeat it
    assert messages == [("user", "Tell me a story"), ("assistant", "".join(PARTIAL))]
    assert [(run.status, run.error) for run in runs] == [("failed", attempt.error)]


async def test_a_stalled_stream_shows_its_tokens_live_then_the_error(
    server: MockOpenAIServer,
) -> None:
    server.add(StreamReply((role_chunk(), *map(text_chunk, PARTIAL), Pause(30))))
    seen: list[tuple[str, float]] = []
    async with Models(server) as models:
        model = models.make(first_token_timeout=FIRST_TOKEN, idle_timeout=IDLE, max_retries=0)
        async with served_app(model) as (_, client):
            started = time.monotonic()
            body = {"message": "Tell me a story"}
            async with client.stream("POST", "/chat/stream", json=body) as response:
                async for event in events_of(response.aiter_text()):
                    seen.append((event.event, time.monotonic() - started))
            await wait_for_disconnect(server)  # the stalled upstream call was closed
    assert [kind for kind, _ in seen] == ["session", "run", "token", "token", "error"]
    last_token, error = seen[3][1], seen[4][1]
    assert IDLE * 0.9 <= error - last_token < IDLE + SLACK


async def test_a_reply_that_never_ends_is_cut_at_the_total_timeout(
    server: MockOpenAIServer,
) -> None:
    trickle = [step for n in range(40) for step in (Pause(0.1), text_chunk(f"{n} "))]
    server.add(StreamReply((role_chunk(), *trickle)))
    async with app_on(server, total_timeout=1.0) as (app, client):
        session_id = await new_session(client)
        attempt = await send(client, "stream", session_id)
        messages, runs = await stored(app, client, session_id)
    assert_actionable(attempt.error, "within 1s (total timeout)", "max_tokens")
    assert 0.9 <= attempt.seconds < 1.0 + SLACK
    assert attempt.text.startswith("0 1 2 ")
    assert messages[1] == ("assistant", attempt.text)
    assert runs[0].status == "failed"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_server_that_sends_halves_of_surrogate_pairs_still_gives_valid_text(
    server: MockOpenAIServer, endpoint: Endpoint
) -> None:
    """A pair split over two chunks is joined, a lone half is U+FFFD: no event or store fails.

    The mock writes each chunk with ``json.dumps``, so the JSON holds escapes
    such as ``\\ud83c``, which orjson refuses and Python's parser takes.
    """
    halves = ("Party \ud83c", "\udf89, lone \udc00", " and \ud83d")
    server.add(StreamReply((role_chunk(), *map(text_chunk, halves))))
    async with app_on(server) as (app, client):
        session_id = await new_session(client)
        attempt = await send(client, endpoint, session_id)
        messages, runs = await stored(app, client, session_id)
    expected = "Party 🎉, lone \ufffd and \ufffd"
    assert (attempt.status, attempt.error, attempt.text) == (200, None, expected)
    assert messages == [("user", "Tell me a story"), ("assistant", expected)]
    assert [run.status for run in runs] == ["completed"]


# -- the circuit breaker ---------------------------------------------------------------


@contextlib.asynccontextmanager
async def app_with_breaker(
    server: MockOpenAIServer,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app as configured from settings: the composition root adds the breaker."""
    settings = make_settings(
        model="openai:gpt-test",
        openai_base_url=server.base_url,
        openai_first_token_timeout=FIRST_TOKEN,
        openai_max_retries=0,
        breaker_failures=2,
        breaker_cooldown_seconds=COOLDOWN,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert isinstance(app.state.services.core.model, CircuitBreakerModel)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agenthost") as client:
            yield app, client


async def test_the_breaker_fails_fast_while_the_model_is_down_then_probes_it(
    server: MockOpenAIServer,
) -> None:
    server.add(ErrorReply(500, "boom"), ErrorReply(503, "down"))
    async with app_with_breaker(server) as (app, client):

        async def circuit() -> tuple[float, float]:
            scrape = Scrape((await client.get("/metrics")).text)
            model = {"model": "openai:gpt-test"}
            return (
                scrape.value("agenthost_model_circuit_open", **model),
                scrape.value("agenthost_model_circuit_opened_total", **model),
            )

        closed_at_start = await circuit()
        session_id = await new_session(client)
        failures = [await send(client, "chat", session_id) for _ in range(2)]
        open_after_failures = await circuit()
        fast = await send(client, "chat", session_id)
        fast_stream = await send(client, "stream", session_id)
        assert len(server.requests) == 2  # failing fast never reaches the server
        await asyncio.sleep(COOLDOWN)
        server.add(text_reply("Back", " again."))
        probe = await send(client, "chat", session_id)
        closed_after_probe = await circuit()
        server.add(text_reply("Still here."))
        after = await send(client, "stream", session_id)
        messages, runs = await stored(app, client, session_id)

    assert closed_at_start == (0, 0)
    assert open_after_failures == (1, 1)
    assert closed_after_probe == (0, 1)

    assert [f.status for f in failures] == [502, 502]
    assert fast.status == 502
    assert 1 <= int(fast.headers["retry-after"]) <= COOLDOWN + 1
    assert fast.seconds < 0.5
    assert_actionable(
        fast.error,
        "openai:gpt-test is unavailable (2 failures in a row)",
        "fail fast for now; it will be tried again in 1s",
        "failed (HTTP 503)",
    )
    assert fast_stream.events[2:] == ["error"]
    assert_actionable(fast_stream.error, "is unavailable (2 failures in a row)")

    assert probe.status == 200
    assert probe.text == "Back again."
    assert after.text == "Still here."
    assert len(server.requests) == 4
    assert [role for role, _ in messages] == ["user"] * 4 + ["user", "assistant"] * 2
    assert [run.status for run in runs] == ["failed"] * 4 + ["completed"] * 2
