"""POST /chat: replies, sessions, validation, the error envelope, busy sessions, idempotency."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from agenthost.errors import (
    ModelRateLimitedError,
    ModelRequestRejectedError,
    ModelTimeoutError,
    ModelUnavailableError,
)
from agenthost.llm.base import ModelRequest
from agenthost.testing import FunctionModel, Reply

from .conftest import running_app


def assert_envelope(response: httpx.Response, status: int, error: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail", "request_id"}
    assert body["error"] == error
    assert body["request_id"] == response.headers["x-request-id"]
    return dict(body)


async def test_chat_creates_a_session_and_continues_it(client: httpx.AsyncClient) -> None:
    first = await client.post("/chat", json={"message": "Hello!"})
    assert first.status_code == 200
    body = first.json()
    assert body["response"] == "You said: Hello!"
    assert body["model"] == "test"
    assert body["usage"]["total_tokens"] == body["tokens_used"] > 0
    assert body["tool_calls"] == []
    uuid.UUID(body["session_id"])
    uuid.UUID(body["run_id"])

    second = await client.post("/chat", json={"message": "Again", "session_id": body["session_id"]})
    assert second.json()["session_id"] == body["session_id"]
    assert (
        second.json()["tokens_used"] == body["tokens_used"] + second.json()["usage"]["total_tokens"]
    )
    session = (await client.get(f"/sessions/{body['session_id']}")).json()
    assert session["message_count"] == 4
    assert [m["content"] for m in session["messages"]] == [
        "Hello!",
        "You said: Hello!",
        "Again",
        "You said: Again",
    ]


async def test_chat_runs_tools_and_reports_them(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/chat", json={"message": '/call calculator {"expression": "6*7"}'}
    )
    body = response.json()
    assert body["response"] == "calculator returned: 42"
    assert body["tool_calls"] == [
        {
            "id": body["tool_calls"][0]["id"],
            "name": "calculator",
            "arguments": '{"expression": "6*7"}',
            "result": "42",
            "error": None,
        }
    ]


async def test_history_reaches_the_model() -> None:
    model = FunctionModel(lambda request: f"{len(request.messages)} messages")
    async with running_app(model) as (_, client):
        first = (await client.post("/chat", json={"message": "one"})).json()
        second = await client.post(
            "/chat", json={"message": "two", "session_id": first["session_id"]}
        )
    assert first["response"] == "2 messages"  # system + user
    assert second.json()["response"] == "4 messages"
    assert [m.content for m in model.requests[1].messages][1:] == ["one", "2 messages", "two"]


async def test_unknown_session_is_404_not_a_new_session(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat", json={"message": "hi", "session_id": str(uuid.uuid4())})
    assert_envelope(response, 404, "Session not found")


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"message": ""}, ["body", "message"]),
        ({"message": "x" * 5001}, ["body", "message"]),
        ({"message": "hi", "temperature": 2.5}, ["body", "temperature"]),
        ({"message": "hi", "temperature": "hot"}, ["body", "temperature"]),
        ({"message": 42}, ["body", "message"]),
        ({"message": "hi", "max_tokens": 0}, ["body", "max_tokens"]),
        ({"message": "hi", "colour": "blue"}, ["body", "colour"]),
        ({}, ["body", "message"]),
    ],
)
async def test_validation_errors_are_422_with_loc_and_msg(
    client: httpx.AsyncClient, body: dict[str, object], location: list[str]
) -> None:
    response = await client.post("/chat", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"] == location
    assert isinstance(detail[0]["msg"], str)
    assert response.json()["error"].startswith("Invalid request: ")


async def test_malformed_json_is_a_clear_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/chat", content=b'{"message": "hi"', headers={"content-type": "application/json"}
    )
    assert_envelope(response, 422, "Invalid request: the body is not valid JSON")


async def test_a_body_that_is_not_an_object_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat", json=["hi"])
    assert response.status_code == 422


async def test_server_limits_are_checked_before_the_model_is_called() -> None:
    model = FunctionModel(lambda _: "never")
    async with running_app(model, max_message_chars=10, max_reply_tokens=50) as (_, client):
        long = await client.post("/chat", json={"message": "x" * 11})
        greedy = await client.post("/chat", json={"message": "hi", "max_tokens": 51})
    assert_envelope(long, 422, "Invalid request: message is longer than 10 characters")
    assert greedy.status_code == 422
    assert "max_tokens is above this server's limit of 50" in greedy.json()["error"]
    assert model.requests == []


async def test_bodies_over_the_limit_are_413() -> None:
    async with running_app(max_body_bytes=2048) as (_, client):
        response = await client.post("/chat", json={"message": "x" * 3000})
        chunked = await client.post(
            "/chat",
            content=_chunks(b'{"message": "' + b"x" * 4000 + b'"}'),
            headers={"content-type": "application/json"},
        )
    assert_envelope(response, 413, "Request body too large: the limit is 2048 bytes")
    assert chunked.status_code == 413


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 500):
        yield data[start : start + 500]


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/chat",
        content=b"message=hi",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_envelope(
        response, 415, "Unsupported media type: send JSON (Content-Type: application/json)"
    )


async def test_unknown_routes_and_wrong_methods_use_the_envelope(
    client: httpx.AsyncClient,
) -> None:
    assert_envelope(await client.get("/nowhere"), 404, "Not found")
    wrong = await client.get("/chat")
    assert_envelope(wrong, 405, "Method not allowed")
    assert wrong.headers["allow"] == "POST"


async def test_request_ids_are_echoed_when_sane(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    replaced = await client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert replaced.headers["x-request-id"] != "bad id\twith spaces"
    assert len(replaced.headers["x-request-id"]) == 32


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (ModelUnavailableError("The model server is down"), 502, "The model server is down"),
        (ModelRequestRejectedError("The model refused the key"), 502, "The model refused the key"),
        (ModelRateLimitedError("Slow down", retry_after=7), 502, "Slow down"),
        (
            ModelTimeoutError("No first token in 60 s", phase="first_token"),
            504,
            "No first token in 60 s",
        ),
    ],
)
async def test_model_failures_map_to_502_and_504(
    error: Exception, status: int, message: str
) -> None:
    model = FunctionModel(lambda _: Reply("partial reply here", error=error, fail_after=2))
    async with running_app(model) as (_, client):
        response = await client.post("/chat", json={"message": "hi"})
        body = assert_envelope(response, status, message)
        sessions = (await client.get("/sessions")).json()["sessions"]
        history = (await client.get(f"/sessions/{sessions[0]['session_id']}")).json()
    assert "Traceback" not in str(body)
    if isinstance(error, ModelRateLimitedError):
        assert response.headers["retry-after"] == "7"
    # Nothing is lost: the message and the partial reply are stored.
    assert [m["content"] for m in history["messages"]] == ["hi", "partial reply"]


async def test_an_unexpected_exception_is_a_plain_500_without_internals() -> None:
    def broken(_: ModelRequest) -> str:
        raise RuntimeError("secret internals: password=hunter2")

    async with running_app(FunctionModel(broken)) as (_, client):
        response = await client.post("/chat", json={"message": "hi"})
    body = assert_envelope(response, 500, "The reply failed because of a server error")
    assert "hunter2" not in response.text
    assert body["detail"] is None


async def test_a_second_message_while_a_reply_runs_is_409() -> None:
    model = FunctionModel(lambda _: Reply("slow reply " * 20, delay=0.02))
    async with running_app(model) as (_, client):
        session_id = (await client.post("/sessions")).json()["session_id"]
        first = asyncio.create_task(
            client.post("/chat", json={"message": "one", "session_id": session_id})
        )
        while not model.requests:
            await asyncio.sleep(0.005)
        busy = await client.post("/chat", json={"message": "two", "session_id": session_id})
        assert_envelope(busy, 409, "Session busy")
        assert (await first).status_code == 200
        after = await client.post("/chat", json={"message": "three", "session_id": session_id})
        assert after.status_code == 200


async def test_idempotent_retry_returns_the_same_run_without_calling_the_model() -> None:
    model = FunctionModel(lambda request: f"reply {len(model.requests)}")
    async with running_app(model) as (_, client):
        headers = {"Idempotency-Key": "order-42"}
        first = await client.post("/chat", json={"message": "hi"}, headers=headers)
        retry = await client.post("/chat", json={"message": "hi"}, headers=headers)
        other = await client.post("/chat", json={"message": "changed"}, headers=headers)
        fresh = await client.post("/chat", json={"message": "hi"})
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    assert len(model.requests) == 2  # the first request and the un-keyed one
    assert other.status_code == 422
    assert "Idempotency-Key was already used with a different request" in other.json()["error"]
    assert fresh.json()["run_id"] != first.json()["run_id"]


async def test_unknown_agent_is_404_naming_the_hosted_ones(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat", json={"message": "hi", "agent": "ghost"})
    assert_envelope(response, 404, "Agent not found: 'ghost' (available: assistant, faq, research)")


async def test_malformed_session_ids_are_rejected_before_any_query(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/chat", json={"message": "hi", "session_id": "../../etc"})
    assert response.status_code == 422
    assert (await client.get("/sessions/not-a-uuid")).status_code == 422


async def test_a_failed_reply_says_where_its_partial_text_is_and_replays_as_a_failure() -> None:
    model = FunctionModel(
        lambda _: Reply("half a reply", error=ModelUnavailableError("Model down"), fail_after=2)
    )
    async with running_app(model) as (_, client):
        headers = {"Idempotency-Key": "retry-me"}
        failed = await client.post("/chat", json={"message": "hi"}, headers=headers)
        replayed = await client.post("/chat", json={"message": "hi"}, headers=headers)
        session = (await client.get(f"/sessions/{failed.headers['x-session-id']}")).json()
    assert failed.status_code == replayed.status_code == 502
    assert replayed.json()["error"] == failed.json()["error"] == "Model down"
    assert replayed.headers["x-run-id"] == failed.headers["x-run-id"]
    assert len(model.requests) == 1
    assert session["messages"][-1]["content"] == "half a"
