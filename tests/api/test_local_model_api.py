"""The embedded model through the API: a streamed answer, and an event loop that stays free."""

from __future__ import annotations

import asyncio
import time

import pytest

from agenthost.llm.registry import resolve_model
from tests.support.local_questions import BERLIN
from tests.support.sse import Event, Parser, tokens

from .conftest import make_settings, served_app

pytestmark = pytest.mark.local_model


async def test_the_embedded_model_streams_an_answer_through_the_api() -> None:
    settings = make_settings(model="local")
    async with served_app(resolve_model("local", settings), model="local") as (_, client):
        response = await client.post(
            "/chat/stream",
            json={"message": BERLIN, "temperature": 0},
        )
        events = Parser()
        parsed = list(events.feed(response.text))
        session = (await client.get(f"/sessions/{parsed[0].data}")).json()
    assert parsed[-1].event == "done"
    assert sum(e.event == "token" for e in parsed) >= 2
    assert "Berlin" in tokens(parsed)
    assert session["messages"][-1]["content"] == tokens(parsed)
    assert session["tokens_used"] == int(parsed[-1].data)


async def test_health_answers_at_once_while_the_model_writes() -> None:
    settings = make_settings(model="local")
    async with served_app(resolve_model("local", settings), model="local") as (_, client):
        seen: list[Event] = []
        parser = Parser()
        latencies: list[float] = []

        async def long_reply() -> None:
            body = {"message": "Write a long story about a dragon.", "max_tokens": 200}
            async with client.stream("POST", "/chat/stream", json=body) as response:
                async for chunk in response.aiter_text():
                    seen.extend(parser.feed(chunk))

        writer = asyncio.create_task(long_reply())
        while not any(e.event == "token" for e in seen):
            await asyncio.sleep(0.01)
        while not writer.done() and len(latencies) < 20:
            started = time.monotonic()
            assert (await client.get("/health")).status_code == 200
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.02)
        await writer
    assert len(latencies) >= 2  # measured while the reply was being written
    assert max(latencies) < 1.0, latencies  # a blocked loop would wait out the reply
