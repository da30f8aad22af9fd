"""``OpenAIChatModel`` against a real OpenAI-compatible server on loopback: the happy path.

Streaming, tool-call assembly, usage and finish reasons; the request body it
sends; closing a stream early; construction from settings. Failures, timeouts
and retries are in ``test_openai_failures``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from agenthost import __version__
from agenthost.errors import ConfigurationError, ModelRequestRejectedError
from agenthost.llm.base import (
    ChatModel,
    ModelEvent,
    ModelFinished,
    ModelRequest,
    TextDelta,
    ToolCallReady,
    ToolSpec,
    UsageReported,
)
from agenthost.llm.openai import PLACEHOLDER_API_KEY, OpenAIChatModel
from agenthost.messages import Message, ToolCall, ToolCallId, Usage
from agenthost.settings import Settings
from tests.support.mock_openai import (
    MockOpenAIServer,
    Pause,
    StreamReply,
    finish_chunk,
    role_chunk,
    text_chunk,
    text_reply,
    tool_call_chunk,
    usage_chunk,
)
from tests.support.openai_models import (
    API_KEY,
    HELLO,
    Models,
    collect,
    text_of,
    wait_for_disconnect,
)


@pytest.fixture
async def server() -> AsyncIterator[MockOpenAIServer]:
    async with MockOpenAIServer() as server:
        yield server


@pytest.fixture
async def models(server: MockOpenAIServer) -> AsyncIterator[Models]:
    async with Models(server) as models:
        yield models


# -- streaming -----------------------------------------------------------------


async def test_stream_yields_text_deltas_then_usage_and_finish(
    server: MockOpenAIServer, models: Models
) -> None:
    server.add(text_reply("Hel", "lo", ", world"))
    events = await collect(models.make())
    assert events == [
        TextDelta("Hel"),
        TextDelta("lo"),
        TextDelta(", world"),
        UsageReported(Usage(prompt_tokens=5, completion_tokens=2)),
        ModelFinished("stop"),
    ]
    assert text_of(events) == "Hello, world"


async def test_tool_calls_are_assembled_from_interleaved_partial_deltas(
    server: MockOpenAIServer, models: Models
) -> None:
    server.add(
        StreamReply(
            (
                role_chunk(),
                tool_call_chunk(0, call_id="call_a", name="weather"),
                tool_call_chunk(1, call_id="call_b", name="search"),
                tool_call_chunk(0, arguments='{"ci'),
                tool_call_chunk(1, arguments='{"query": '),
                tool_call_chunk(0, arguments='ty": "Oslo"}'),
                tool_call_chunk(1, arguments='"news"}'),
                finish_chunk("tool_calls"),
                usage_chunk(20, 9),
            )
        )
    )
    events = await collect(models.make())
    assert events == [
        ToolCallReady(ToolCall(ToolCallId("call_a"), "weather", '{"city": "Oslo"}')),
        ToolCallReady(ToolCall(ToolCallId("call_b"), "search", '{"query": "news"}')),
        UsageReported(Usage(prompt_tokens=20, completion_tokens=9)),
        ModelFinished("tool_calls"),
    ]


async def test_tool_call_without_arguments_gets_an_empty_object(
    server: MockOpenAIServer, models: Models
) -> None:
    server.add(StreamReply((tool_call_chunk(0, name="now"), finish_chunk("stop"))))
    events = await collect(models.make())
    assert events == [
        ToolCallReady(ToolCall(ToolCallId("call_0"), "now", "{}")),
        ModelFinished("tool_calls"),
    ]


@pytest.mark.parametrize(
    ("sent", "reported"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "stop"),
        ("something_new", "stop"),
    ],
)
async def test_finish_reasons_are_mapped(
    server: MockOpenAIServer, models: Models, sent: str, reported: str
) -> None:
    server.add(text_reply("ok", finish=sent))
    events = await collect(models.make())
    assert events[-1] == ModelFinished(reported)  # type: ignore[arg-type]


async def test_request_body_converts_messages_tools_and_options(
    server: MockOpenAIServer, models: Models
) -> None:
    call = ToolCall(ToolCallId("call_1"), "weather", '{"city": "Oslo"}')
    request = ModelRequest(
        messages=(
            Message.system("Be brief."),
            Message.user("Weather in Oslo?"),
            Message.assistant("", tool_calls=(call,)),
            Message.tool("Sunny", tool_call_id=ToolCallId("call_1"), name="weather"),
            Message.assistant("Sunny."),
        ),
        tools=(
            ToolSpec(
                "weather",
                "Today's weather in a city.",
                {"type": "object", "properties": {"city": {"type": "string"}}},
            ),
        ),
        temperature=0.2,
        max_tokens=64,
    )
    server.add(text_reply("ok"))
    await collect(models.make(), request)
    [body] = server.requests
    assert body["model"] == "gpt-test"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 64
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "content": "Sunny", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "Sunny."},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Today's weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    assert server.authorizations == [f"Bearer {API_KEY}"]
    headers = server.headers[0]
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept"] == "text/event-stream"
    assert headers["User-Agent"] == f"agenthost/{__version__}"


async def test_request_body_carries_any_text_in_utf8_and_a_lone_surrogate_escaped(
    server: MockOpenAIServer, models: Models
) -> None:
    for text in ("Grüße, 東京 🌧", "half a pair: \ud83c"):
        server.add(text_reply("ok"))
        await collect(models.make(), ModelRequest(messages=(Message.user(text),)))
        assert server.requests[-1]["messages"] == [{"role": "user", "content": text}]
    raw = server.raw_bodies
    assert "Grüße, 東京 🌧".encode() in raw[0]  # UTF-8, not \u escapes
    assert b"\\ud83c" in raw[1]  # what UTF-8 cannot carry, JSON's escape can


async def test_request_body_leaves_out_what_is_unset(
    server: MockOpenAIServer, models: Models
) -> None:
    server.add(text_reply("ok"))
    await collect(models.make())
    [body] = server.requests
    assert "tools" not in body
    assert "temperature" not in body
    assert "max_tokens" not in body


async def test_keyless_local_server_gets_a_placeholder_key(
    server: MockOpenAIServer, models: Models
) -> None:
    server.add(text_reply("ok"))
    await collect(models.make(api_key=None))
    assert server.authorizations == [f"Bearer {PLACEHOLDER_API_KEY}"]
    assert "OpenAI-Organization" not in server.headers[0]
    assert "OpenAI-Project" not in server.headers[0]


async def test_tool_message_without_call_id_is_rejected_before_sending(
    server: MockOpenAIServer, models: Models
) -> None:
    request = ModelRequest(messages=(Message("tool", "orphan"),))
    with pytest.raises(ModelRequestRejectedError, match="tool_call_id"):
        await collect(models.make(), request)
    assert server.requests == []


# -- lifecycle -----------------------------------------------------------------


async def test_closing_the_stream_early_closes_the_upstream_connection(
    server: MockOpenAIServer, models: Models
) -> None:
    steps = [step for _ in range(200) for step in (Pause(0.02), text_chunk("x"))]
    server.add(StreamReply((text_chunk("first"), *steps)))
    stream = cast(AsyncGenerator[ModelEvent, None], models.make().stream(HELLO))
    assert await anext(stream) == TextDelta("first")
    await stream.aclose()
    await wait_for_disconnect(server)


async def test_cancelling_the_consumer_closes_the_upstream_connection(
    server: MockOpenAIServer, models: Models
) -> None:
    server.add(StreamReply((text_chunk("first"), Pause(10), text_chunk("never"))))
    model = models.make()
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in model.stream(HELLO):
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for_disconnect(server)


async def test_model_describes_itself(models: Models) -> None:
    model = models.make()
    assert isinstance(model, ChatModel)
    assert model.model_id == "openai:gpt-test"
    assert model.context_window == 8192
    assert model.supports_tools is True
    await model.start()
    await model.start()
    await model.aclose()
    await model.aclose()


def test_count_tokens_estimates_four_bytes_per_token() -> None:
    model = OpenAIChatModel("gpt-test", api_key=API_KEY)
    assert model.count_tokens("") == 0
    assert model.count_tokens("abcd") == 1
    assert model.count_tokens("abcde") == 2
    assert model.count_tokens("ééé") == 2  # six UTF-8 bytes


def test_a_key_or_a_base_url_is_required() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIChatModel("gpt-test", api_key=None, base_url=None)


@pytest.mark.parametrize(
    ("api_key", "project", "base_url", "named"),
    [
        ("sk-secret\nX-Injected: 1", None, None, "'Authorization' holds a line break"),
        ("k", "p\r\n", None, "'OpenAI-Project' holds a line break"),
        ("k", None, "localhost:8000/v1", "not an http"),
    ],
)
def test_settings_that_cannot_make_a_request_fail_at_start(
    api_key: str, project: str | None, base_url: str | None, named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named) as raised:
        OpenAIChatModel("gpt-test", api_key=api_key, project=project, base_url=base_url)
    assert "sk-secret" not in str(raised.value)  # the key is not repeated in the message


async def test_from_settings_uses_the_openai_settings(
    server: MockOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AGENTHOST_OPENAI_API_KEY", "AGENTHOST_OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-test")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-test")
    settings = Settings(openai_context_window=4096, cache_dir=tmp_path / "cache")
    model = OpenAIChatModel.from_settings("llama3", settings)
    server.add(text_reply("ok"))
    try:
        assert text_of(await collect(model)) == "ok"
    finally:
        await model.aclose()
    assert model.model_id == "openai:llama3"
    assert model.context_window == 4096
    assert server.requests[0]["model"] == "llama3"
    assert server.authorizations == [f"Bearer {API_KEY}"]
    assert server.headers[0]["OpenAI-Organization"] == "org-test"
    assert server.headers[0]["OpenAI-Project"] == "proj-test"
