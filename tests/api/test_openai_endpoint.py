"""The OpenAI-compatible endpoint, driven by the official ``openai`` SDK over a real socket."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from agenthost.errors import ModelUnavailableError
from agenthost.testing import FunctionModel, Reply
from tests.support.sse import parse

from .conftest import running_app, served_app


def sdk(client: httpx.AsyncClient) -> openai.AsyncOpenAI:
    base = str(client.base_url).rstrip("/")
    return openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


async def test_the_sdk_completes_streams_and_lists_models() -> None:
    async with served_app() as (_, client), sdk(client) as api:
        models = await api.models.list()
        completion = await api.chat.completions.create(
            model="assistant",
            messages=[
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Hello there"},
            ],
        )
        stream = await api.chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": "Stream me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert [m.id for m in models.data] == ["assistant", "faq", "research"]
    assert completion.choices[0].message.content == "You said: Hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: Stream me"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


async def test_server_side_tools_run_inside_the_agent() -> None:
    async with served_app() as (_, client), sdk(client) as api:
        completion = await api.chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": '/call calculator {"expression": "3*3"}'}],
        )
    assert completion.choices[0].message.content == "calculator returned: 9"
    assert completion.choices[0].message.tool_calls is None


async def test_history_sent_by_the_client_reaches_the_model() -> None:
    model = FunctionModel(lambda request: " | ".join(m.content for m in request.messages))
    async with running_app(model) as (_, client):
        response = await client.post(
            "/v1/chat/completions",
            json={
                "model": "assistant",
                "messages": [
                    {"role": "user", "content": "first"},
                    {"role": "assistant", "content": "answer"},
                    {"role": "user", "content": [{"type": "text", "text": "second"}]},
                ],
            },
        )
    content = response.json()["choices"][0]["message"]["content"]
    assert content.split(" | ")[1:] == ["first", "answer", "second"]
    assert content.startswith("You are a helpful")


async def test_errors_use_openai_shape_so_sdks_raise_the_right_class() -> None:
    async with served_app() as (_, client), sdk(client) as api:
        with pytest.raises(openai.NotFoundError) as missing:
            await api.chat.completions.create(
                model="ghost", messages=[{"role": "user", "content": "hi"}]
            )
        with pytest.raises(openai.UnprocessableEntityError):
            await api.chat.completions.create(model="assistant", messages=[])
    assert "Agent not found: 'ghost'" in missing.value.message
    body = missing.value.body
    assert isinstance(body, dict)
    assert body["type"] == "not_found_error"


async def test_a_model_failure_is_a_502_in_openai_shape() -> None:
    model = FunctionModel(lambda _: Reply(error=ModelUnavailableError("Upstream is down")))
    async with running_app(model) as (_, client):
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "assistant", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert response.status_code == 502
    assert response.json() == {
        "error": {
            "message": "Upstream is down",
            "type": "upstream_error",
            "param": None,
            "code": "502",
        }
    }


async def test_session_extension_reads_and_appends_to_a_stored_session() -> None:
    async with running_app() as (_, client):
        session_id = (await client.post("/sessions")).json()["session_id"]
        body = {
            "model": "assistant",
            "messages": [{"role": "user", "content": "remember this"}],
            "session_id": session_id,
        }
        first = await client.post("/v1/chat/completions", json=body)
        streamed = await client.post(
            "/v1/chat/completions",
            json={**body, "stream": True, "session_id": None},
            headers={"X-Session-ID": session_id},
        )
        session = (await client.get(f"/sessions/{session_id}")).json()
        unknown = await client.post(
            "/v1/chat/completions",
            json={**body, "session_id": "00000000-0000-4000-8000-000000000000"},
        )
    assert first.json()["choices"][0]["message"]["content"] == "You said: remember this"
    chunks = [line for line in streamed.text.split("\n\n") if line]
    assert chunks[-1] == "data: [DONE]"
    assert session["message_count"] == 4
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "not_found_error"


async def test_stream_without_usage_option_has_no_usage_chunk(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/chat/completions",
        json={"model": "assistant", "messages": [{"role": "user", "content": "x"}], "stream": True},
    )
    datas = [e.data for e in parse(response.text).events]
    assert datas[-1] == "[DONE]"
    assert all('"usage"' not in d for d in datas)


@pytest.mark.parametrize("stream", [False, True])
async def test_halves_of_surrogate_pairs_in_a_reply_come_out_as_valid_text(stream: bool) -> None:
    chunks = ("split: \ud83c", "\udf89, lone: \udc00, at the end: \ud83d")
    model = FunctionModel(lambda _: Reply(chunks=chunks))
    body = {"model": "assistant", "messages": [{"role": "user", "content": "x"}], "stream": stream}
    async with running_app(model) as (_, client):
        response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    if stream:
        datas = [json.loads(e.data) for e in parse(response.text).events[:-1]]
        text = "".join(d["choices"][0]["delta"].get("content", "") for d in datas)
        assert datas[-1]["choices"][0]["finish_reason"] == "stop"
    else:
        text = response.json()["choices"][0]["message"]["content"]
    assert text == "split: 🎉, lone: \ufffd, at the end: \ufffd"
