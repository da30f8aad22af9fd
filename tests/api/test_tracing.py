"""OpenTelemetry tracing: request, turn, model and tool spans with GenAI attributes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agenthost.errors import ConfigurationError, ModelUnavailableError
from agenthost.llm.base import ChatModel
from agenthost.observability.telemetry import create_tracing
from agenthost.settings import Settings
from agenthost.testing import FunctionModel, Reply

from .conftest import running_app

CALCULATE = '/call calculator {"expression": "6*7"}'
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@asynccontextmanager
async def traced_app(
    chat_model: ChatModel | None = None, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    settings = {"otel_enabled": True, "otel_exporter": "none", **overrides}
    async with running_app(chat_model, **settings) as (app, client):
        tracing = app.state.services.telemetry.tracing
        tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
        yield app, client, exporter


def named(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name.startswith(prefix)]


def attribute(span: ReadableSpan, name: str) -> object:
    assert span.attributes is not None
    return span.attributes.get(name)


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_a_turn_has_request_agent_model_and_tool_spans() -> None:
    async with traced_app() as (_, client, exporter):
        response = await client.post("/chat", json={"message": CALCULATE, "temperature": 0.2})
        spans = exporter.get_finished_spans()
    assert response.status_code == 200
    (server,) = named(spans, "POST")
    (agent,) = named(spans, "invoke_agent")
    first, second = named(spans, "chat")
    (tool,) = named(spans, "execute_tool")
    assert server.name == "POST /chat"
    assert attribute(server, "http.route") == "/chat"
    assert attribute(server, "http.response.status_code") == 200
    assert response.headers["x-trace-id"] == f"{server.context.trace_id:032x}"
    assert {span.context.trace_id for span in spans} == {server.context.trace_id}
    assert parent_of(agent) == server.context.span_id
    assert parent_of(first) == parent_of(second) == parent_of(tool) == agent.context.span_id
    assert agent.name == "invoke_agent assistant"
    assert attribute(agent, "gen_ai.operation.name") == "invoke_agent"
    assert attribute(agent, "gen_ai.agent.name") == "assistant"
    assert attribute(agent, "gen_ai.conversation.id") == response.json()["session_id"]
    usage = response.json()["usage"]
    assert attribute(agent, "gen_ai.usage.input_tokens") == usage["prompt_tokens"]
    assert attribute(agent, "gen_ai.usage.output_tokens") == usage["completion_tokens"]
    assert first.name == "chat test"
    assert attribute(first, "gen_ai.operation.name") == "chat"
    assert attribute(first, "gen_ai.provider.name") == "test"
    assert attribute(first, "gen_ai.request.model") == "test"
    assert attribute(first, "gen_ai.request.temperature") == 0.2
    assert attribute(first, "gen_ai.response.finish_reasons") == ("tool_calls",)
    assert attribute(second, "gen_ai.response.finish_reasons") == ("stop",)
    calls = [attribute(span, "gen_ai.usage.input_tokens") for span in (first, second)]
    assert sum(tokens for tokens in calls if isinstance(tokens, int)) == usage["prompt_tokens"]
    assert tool.name == "execute_tool calculator"
    assert attribute(tool, "gen_ai.operation.name") == "execute_tool"
    assert attribute(tool, "gen_ai.tool.name") == "calculator"
    assert attribute(tool, "gen_ai.tool.call.id") == response.json()["tool_calls"][0]["id"]
    assert first.end_time is not None
    assert tool.start_time is not None
    assert first.end_time <= tool.start_time
    text = str([dict(span.attributes or {}) for span in spans])
    assert "6*7" not in text  # no message content in spans


async def test_a_traceparent_header_continues_the_callers_trace() -> None:
    async with traced_app() as (_, client, exporter):
        response = await client.get("/health", headers={"traceparent": TRACEPARENT})
        (server,) = exporter.get_finished_spans()
    assert response.headers["x-trace-id"] == "0af7651916cd43dd8448eb211c80319c"
    assert server.name == "GET /health"
    assert server.parent is not None
    assert f"{server.parent.span_id:016x}" == "b7ad6b7169203331"


async def test_a_failed_model_call_is_an_error_span() -> None:
    model = FunctionModel(lambda _: Reply(error=ModelUnavailableError("down")))
    async with traced_app(model) as (_, client, exporter):
        response = await client.post("/chat", json={"message": "hi"})
        spans = exporter.get_finished_spans()
    assert response.status_code == 502
    (call,) = named(spans, "chat")
    (agent,) = named(spans, "invoke_agent")
    (server,) = named(spans, "POST")
    for span in (call, agent):
        assert not span.status.is_ok
        assert span.attributes is not None
        assert attribute(span, "error.type") == "ModelUnavailableError"
    assert attribute(server, "http.response.status_code") == 502


async def test_unmatched_routes_keep_the_method_as_span_name() -> None:
    async with traced_app() as (_, client, exporter):
        await client.get("/no/such/page")
        (server,) = exporter.get_finished_spans()
    assert server.name == "GET"
    assert attribute(server, "http.route") is None


async def test_without_tracing_there_is_no_trace_header() -> None:
    async with running_app() as (app, client):
        response = await client.get("/health")
    assert app.state.telemetry.tracing is None
    assert "x-trace-id" not in response.headers


def test_tracing_without_the_extra_is_a_clear_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace.export", None)
    with pytest.raises(ConfigurationError, match=r"agenthost\[otel\]"):
        create_tracing(Settings(otel_enabled=True))


def test_tracing_is_off_unless_asked_for() -> None:
    assert create_tracing(Settings()) is None


GLOBAL_PROVIDER_SCRIPT = """
import asyncio, httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from agenthost.server.app import create_app
from agenthost.settings import Settings
from agenthost.testing import TestModel

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

async def main():
    app = create_app(Settings(model="test", database_url="memory://"), model=TestModel())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agenthost") as client:
            assert (await client.post("/chat", json={"message": "hi"})).status_code == 200
            assert (await client.get("/nowhere")).status_code == 404
    print(sorted(span.name for span in exporter.get_finished_spans()))

asyncio.run(main())
"""


def test_a_global_opentelemetry_setup_gets_no_second_set_of_request_spans() -> None:
    """Request spans are agenthost's own (``AGENTHOST_OTEL_ENABLED``); FastAPI adds none."""
    done = subprocess.run(
        [sys.executable, "-c", GLOBAL_PROVIDER_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
