"""The ``ChatModel`` contract, held against every implementation.

test, function, openai (against the loopback mock server), a function model
behind the circuit breaker, and local (the real embedded model): each streams
text deltas and ends with ``ModelFinished``, reports or lets the loop count
usage, counts tokens consistently, stops when its stream is closed early, and
serves another request afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agenthost.llm.base import (
    ChatModel,
    ModelEvent,
    ModelFinished,
    ModelRequest,
    TextDelta,
    UsageReported,
    closing_stream,
)
from agenthost.llm.breaker import CircuitBreakerModel
from agenthost.llm.local import LocalChatModel
from agenthost.messages import Message
from agenthost.settings import Settings
from agenthost.testing import FunctionModel, Reply, TestModel
from tests.support.mock_openai import MockOpenAIServer, text_reply
from tests.support.openai_models import Models

REQUEST = ModelRequest(
    messages=(Message.system("Be brief."), Message.user("What is the capital of France?")),
    temperature=0.0,
    max_tokens=24,
)
KINDS = [
    "test",
    "function",
    "openai",
    "breaker",
    pytest.param("local", marks=pytest.mark.local_model),
]


@pytest.fixture(params=KINDS)
async def model(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChatModel]:
    kind = request.param
    if kind == "test":
        yield TestModel()
    elif kind == "function":
        yield FunctionModel(lambda _: Reply("Paris is the capital of France."))
    elif kind == "breaker":
        yield CircuitBreakerModel(FunctionModel(lambda _: Reply("Paris is the capital.")))
    elif kind == "openai":
        async with MockOpenAIServer() as server, Models(server) as models:
            server.add(*(text_reply("Paris", " is", " the capital.") for _ in range(3)))
            yield models.make()
    else:
        local = LocalChatModel(Settings(cache_dir=Path.home() / ".cache" / "agenthost"))
        await local.start()
        try:
            yield local
        finally:
            await local.aclose()


async def collect(model: ChatModel) -> list[ModelEvent]:
    async with closing_stream(model.stream(REQUEST)) as events:
        return [event async for event in events]


async def test_a_reply_is_text_deltas_then_one_finish(model: ChatModel) -> None:
    await model.start()
    events = await collect(model)
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert deltas
    assert "".join(d.text for d in deltas).strip()
    assert isinstance(events[-1], ModelFinished)
    assert sum(isinstance(e, ModelFinished) for e in events) == 1
    for usage in (e.usage for e in events if isinstance(e, UsageReported)):
        assert usage.prompt_tokens > 0
        assert usage.completion_tokens > 0


async def test_token_counts_are_consistent(model: ChatModel) -> None:
    await model.start()
    short = model.count_tokens("Paris")
    longer = model.count_tokens("Paris is the capital of France, and Rome is Italy's.")
    assert model.count_tokens("") == 0
    assert 0 < short < longer
    assert model.count_tokens("Paris") == short
    assert model.context_window > 0


async def test_closing_the_stream_early_leaves_the_model_usable(model: ChatModel) -> None:
    await model.start()
    async with closing_stream(model.stream(REQUEST)) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                break
    again = await collect(model)
    assert isinstance(again[-1], ModelFinished)
    await model.start()  # starting twice is harmless
