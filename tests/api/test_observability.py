"""Logs and metrics through the app: ids and route templates in, message text and keys out."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI

from agenthost.auth.keys import generate_key
from agenthost.errors import ModelUnavailableError
from agenthost.observability.logging import HANDLER_NAME, configure_logging
from agenthost.settings import Settings
from agenthost.testing import FunctionModel, Reply
from tests.support.metrics import Scrape
from tests.support.sse import Parser

from .conftest import running_app, served_app

SECRET_TEXT = "my plan involves pineapples"
LogLines = Callable[[], list[dict[str, object]]]


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[LogLines]:
    """The process logs JSON lines to stderr for the test; returns a reader of those lines."""
    root = logging.getLogger()
    level = root.level
    configure_logging(Settings(log_format="json", log_level="info"))

    def read() -> list[dict[str, object]]:
        lines = capsys.readouterr().err.splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    yield read
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)
    root.setLevel(level)


def by_logger(lines: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [line for line in lines if line["logger"] == name]


async def make_key(app: FastAPI) -> str:
    new = generate_key()
    await app.state.services.store.create_api_key(
        name="observer", prefix=new.prefix, key_hash=new.key_hash
    )
    return new.secret


async def scrape(client: httpx.AsyncClient) -> Scrape:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


async def test_access_log_has_the_route_template_status_latency_and_ids(
    json_logs: LogLines,
) -> None:
    async with running_app() as (_, client):
        chat = await client.post(
            "/chat", json={"message": "Hello"}, headers={"X-Request-ID": "req-observed-1"}
        )
        session_id = chat.json()["session_id"]
        await client.get(f"/sessions/{session_id}", headers={"X-Request-ID": "req-observed-2"})
        await client.get("/no/such/page")
    access = by_logger(json_logs(), "agenthost.access")
    assert [line["route"] for line in access] == ["/chat", "/sessions/{session_id}", "unmatched"]
    posted, got, missing = access
    assert posted["request_id"] == "req-observed-1"
    assert posted["session_id"] == session_id
    assert posted["run_id"] == chat.json()["run_id"]
    assert (posted["method"], posted["status"]) == ("POST", 200)
    assert isinstance(posted["latency_ms"], float)
    assert got["request_id"] == "req-observed-2"
    assert got["path"] == f"/sessions/{session_id}"
    assert "run_id" not in got  # nothing left over from the request before
    assert (missing["status"], missing["path"]) == (404, "/no/such/page")
    for line in access:
        assert {"time", "level", "message", "pid"} <= line.keys()


async def test_a_run_logs_one_line_with_its_ids_tokens_and_status(json_logs: LogLines) -> None:
    async with running_app() as (_, client):
        reply = (await client.post("/chat", json={"message": "Hello"})).json()
    (run,) = by_logger(json_logs(), "agenthost.runs")
    assert run["message"] == "run completed"
    assert run["session_id"] == reply["session_id"]
    assert run["run_id"] == reply["run_id"]
    assert (run["agent"], run["model"], run["status"]) == ("assistant", "test", "completed")
    assert run["tokens_in"] == reply["usage"]["prompt_tokens"]
    assert run["tokens_out"] == reply["usage"]["completion_tokens"]
    assert isinstance(run["ttft_ms"], float)
    assert isinstance(run["duration_ms"], float)


async def test_logs_never_hold_the_message_text_or_the_api_key(
    json_logs: LogLines, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_app(auth="keys") as (app, client):
        key = await make_key(app)
        headers = {"Authorization": f"Bearer {key}"}
        reply = await client.post("/chat", json={"message": SECRET_TEXT}, headers=headers)
        await client.post("/chat/stream", json={"message": SECRET_TEXT}, headers=headers)
        await client.get("/sessions", headers={"X-API-Key": key})
    assert reply.json()["response"] == f"You said: {SECRET_TEXT}"
    lines = json_logs()
    everything = json.dumps(lines)
    assert "pineapples" not in everything
    assert key not in everything
    access = by_logger(lines, "agenthost.access")
    assert len(access) == 3
    assert all(line["key_prefix"] == key[: len(str(line["key_prefix"]))] for line in access)
    assert len(str(access[0]["key_prefix"])) < len(key) // 2


async def test_the_log_content_option_logs_message_and_reply_text(json_logs: LogLines) -> None:
    async with running_app(log_content=True) as (_, client):
        await client.post("/chat", json={"message": SECRET_TEXT})
    (run,) = by_logger(json_logs(), "agenthost.runs")
    assert run["message_text"] == SECRET_TEXT
    assert run["reply_text"] == f"You said: {SECRET_TEXT}"


async def test_metrics_count_requests_by_route_template_method_and_status() -> None:
    async with running_app() as (_, client):
        first = (await client.post("/chat", json={"message": "one"})).json()
        await client.post("/chat", json={"message": "two", "session_id": first["session_id"]})
        await client.post("/chat/stream", json={"message": "three"})
        await client.get(f"/sessions/{first['session_id']}")
        await client.get("/sessions/00000000-0000-0000-0000-000000000000")
        await client.post("/chat", json={"message": ""})
        await client.get("/nowhere")
        await client.delete("/health")
        await scrape(client)
        metrics = await scrape(client)
    requests = "agenthost_http_requests_total"
    assert metrics.value(requests, route="/chat", method="POST", status="200") == 2
    assert metrics.value(requests, route="/chat", method="POST", status="422") == 1
    assert metrics.value(requests, route="/chat/stream", method="POST", status="200") == 1
    session = "/sessions/{session_id}"
    assert metrics.value(requests, route=session, method="GET", status="200") == 1
    assert metrics.value(requests, route=session, method="GET", status="404") == 1
    assert metrics.value(requests, route="unmatched", method="GET", status="404") == 1
    assert metrics.value(requests, route="/health", method="DELETE", status="405") == 1
    assert {s["route"] for s in metrics.series(requests)} == {
        "/chat",
        "/chat/stream",
        session,
        "unmatched",
        "/health",
    }  # scrapes are not counted
    duration = "agenthost_http_request_duration_seconds_count"
    assert metrics.value(duration, route="/chat", method="POST") == 3
    assert metrics.value("agenthost_active_streams") == 0


async def test_metrics_count_tokens_runs_first_tokens_and_store_operations() -> None:
    async with running_app() as (_, client):
        replies = [(await client.post("/chat", json={"message": f"n{i}"})).json() for i in range(3)]
        metrics = await scrape(client)
    labels = {"model": "test", "agent": "assistant"}
    tokens_in = sum(r["usage"]["prompt_tokens"] for r in replies)
    tokens_out = sum(r["usage"]["completion_tokens"] for r in replies)
    assert metrics.value("agenthost_model_tokens_total", direction="in", **labels) == tokens_in
    assert metrics.value("agenthost_model_tokens_total", direction="out", **labels) == tokens_out
    assert metrics.value("agenthost_runs_total", agent="assistant", status="completed") == 3
    assert metrics.value("agenthost_time_to_first_token_seconds_count", **labels) == 3
    store = "agenthost_store_operation_duration_seconds_count"
    assert metrics.value(store, operation="begin_turn", backend="memory") == 3
    assert metrics.value(store, operation="complete_turn", backend="memory") == 3


async def test_a_new_session_s_first_turn_reads_no_history_from_the_store() -> None:
    """Nothing was said before a session's first message: only later turns read the window."""
    model = FunctionModel(lambda request: " | ".join(m.content for m in request.messages[1:]))
    async with running_app(model) as (_, client):
        first = (await client.post("/chat", json={"message": "one"})).json()
        after_first = await scrape(client)
        body = {"message": "two", "session_id": first["session_id"]}
        second = (await client.post("/chat", json=body)).json()
        after_second = await scrape(client)
    store = "agenthost_store_operation_duration_seconds_count"
    reads = {"operation": "read_window", "backend": "memory"}
    assert first["response"] == "one"
    assert after_first.value(store, **reads) == 0
    assert second["response"] == "one | one | two"  # the history reached the model
    assert after_second.value(store, **reads) == 1


async def test_model_errors_are_counted_by_kind_and_the_run_as_failed() -> None:
    model = FunctionModel(lambda _: Reply(error=ModelUnavailableError("down")))
    async with running_app(model) as (_, client):
        response = await client.post("/chat", json={"message": "hi"})
        metrics = await scrape(client)
    assert response.status_code == 502
    kind = {"model": "function", "kind": "ModelUnavailableError"}
    assert metrics.value("agenthost_model_errors_total", **kind) == 1
    assert metrics.value("agenthost_runs_total", agent="assistant", status="failed") == 1


async def test_stateless_openai_turns_are_counted_too() -> None:
    body = {"model": "assistant", "messages": [{"role": "user", "content": "Hi"}]}
    async with running_app() as (_, client):
        completion = (await client.post("/v1/chat/completions", json=body)).json()
        metrics = await scrape(client)
    labels = {"model": "test", "agent": "assistant"}
    usage = completion["usage"]
    assert metrics.value("agenthost_runs_total", agent="assistant", status="completed") == 1
    tokens_in = metrics.value("agenthost_model_tokens_total", direction="in", **labels)
    assert tokens_in == usage["prompt_tokens"]
    assert metrics.value("agenthost_time_to_first_token_seconds_count", **labels) == 1


async def test_rate_limit_rejections_are_counted_by_limit() -> None:
    async with running_app() as (app, client):
        app.state.services.telemetry.metrics.record_rate_limited("requests")
        app.state.services.telemetry.metrics.record_rate_limited("requests")
        app.state.services.telemetry.metrics.record_rate_limited("streams")
        metrics = await scrape(client)
    assert metrics.value("agenthost_rate_limited_total", limit="requests") == 2
    assert metrics.value("agenthost_rate_limited_total", limit="streams") == 1


async def test_active_streams_count_the_streams_open_now() -> None:
    slow = FunctionModel(lambda _: Reply("one two three four", delay=0.2))
    async with served_app(slow) as (_, client):
        async with client.stream("POST", "/chat/stream", json={"message": "hi"}) as response:
            parser = Parser()
            chunks = response.aiter_text()
            async for chunk in chunks:
                if any(event.event == "token" for event in parser.feed(chunk)):
                    break
            during = await scrape(client)
            rest = [event for chunk in [c async for c in chunks] for event in parser.feed(chunk)]
        after = await scrape(client)
    assert during.value("agenthost_active_streams") == 1
    assert after.value("agenthost_active_streams") == 0
    assert rest[-1].event == "done"
    counted = after.value(
        "agenthost_http_requests_total", route="/chat/stream", method="POST", status="200"
    )
    assert counted == 1


async def test_a_stream_the_client_leaves_is_counted_when_it_ends() -> None:
    slow = FunctionModel(lambda _: Reply("one two three four five six", delay=0.2))
    async with served_app(slow) as (_, client):
        async with client.stream("POST", "/chat/stream", json={"message": "hi"}) as response:
            async for _chunk in response.aiter_bytes():
                break  # the client goes away mid-stream
        for _ in range(100):
            metrics = await scrape(client)
            if metrics.value("agenthost_active_streams") == 0:
                break
            await asyncio.sleep(0.05)
    assert metrics.value("agenthost_active_streams") == 0
    stream = {"route": "/chat/stream", "method": "POST", "status": "200"}
    assert metrics.value("agenthost_http_requests_total", **stream) == 1
