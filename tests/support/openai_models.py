"""``OpenAIChatModel``s pointed at a ``MockOpenAIServer``, and helpers to read their streams.

The models get short timeouts and retry delays so that failure tests take
tenths of a second; ``Models`` closes every model it built.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

import pytest

from agenthost.errors import ModelError
from agenthost.llm.base import ModelEvent, ModelRequest, TextDelta
from agenthost.llm.openai import OpenAIChatModel
from agenthost.messages import Message
from tests.support.mock_openai import MockOpenAIServer

API_KEY = "sk-test-secret-0123456789"
HELLO = ModelRequest(messages=(Message.user("Hello"),))


class Models:
    """Builds models pointed at the mock server, with short timeouts; closes them all."""

    def __init__(self, server: MockOpenAIServer) -> None:
        self._server = server
        self._built: list[OpenAIChatModel] = []

    def make(
        self,
        *,
        api_key: str | None = API_KEY,
        base_url: str | None = None,
        first_token_timeout: float = 5.0,
        idle_timeout: float = 5.0,
        total_timeout: float = 20.0,
        max_retries: int = 0,
    ) -> OpenAIChatModel:
        model = OpenAIChatModel(
            "gpt-test",
            api_key=api_key,
            base_url=base_url or self._server.base_url,
            context_window=8192,
            connect_timeout=2.0,
            first_token_timeout=first_token_timeout,
            idle_timeout=idle_timeout,
            total_timeout=total_timeout,
            max_retries=max_retries,
            max_connections=64,
            retry_base_delay=0.01,
            retry_max_delay=0.05,
            max_retry_after=1.0,
        )
        self._built.append(model)
        return model

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for model in self._built:
            await model.aclose()


async def collect(model: OpenAIChatModel, request: ModelRequest = HELLO) -> list[ModelEvent]:
    return [event async for event in model.stream(request)]


async def collect_until_error(
    model: OpenAIChatModel, request: ModelRequest = HELLO
) -> tuple[list[ModelEvent], ModelError]:
    events: list[ModelEvent] = []
    try:
        async for event in model.stream(request):
            events.append(event)
    except ModelError as error:
        return events, error
    pytest.fail(f"the stream ended without an error after {events}")


async def wait_for_disconnect(server: MockOpenAIServer) -> None:
    async with asyncio.timeout(10):  # a bound for a loaded machine, not an expectation
        await server.wait_for_disconnects(1)


def text_of(events: list[ModelEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))
