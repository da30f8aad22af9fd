"""``CircuitBreakerModel``: the three states, on a ``FunctionModel`` and a ``ManualClock``.

Failures of the model open it; while open it fails fast, saying when to come
back; after the cool-down one probe goes through; what the model is not to
blame for (a refused request, a rate limit, a cancelled stream) counts neither way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from agenthost.errors import (
    ModelError,
    ModelRateLimitedError,
    ModelRequestRejectedError,
    ModelTimeoutError,
    ModelUnavailableError,
)
from agenthost.llm.base import ModelEvent, ModelRequest, TextDelta, closing_stream
from agenthost.llm.breaker import PROBE_RETRY_AFTER, BreakerState, CircuitBreakerModel
from agenthost.llm.openai import OpenAIChatModel
from agenthost.messages import Message
from agenthost.services import open_services
from agenthost.settings import Settings
from agenthost.testing import FunctionModel, ManualClock, Reply, TestModel

HELLO = ModelRequest(messages=(Message.user("Hello"),))
DOWN = ModelUnavailableError("The model server at upstream:1 failed (HTTP 503). Try again later.")
SLOW = ModelTimeoutError("The model server at upstream:1 sent no output.", phase="first_token")
Outcome = Reply | str | Callable[[], Awaitable[str]]


class Upstream:
    """A ``FunctionModel`` that plays the outcomes a test queues, one per call."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self.model = FunctionModel(self._next, model_id="openai:upstream", context_window=4096)

    @property
    def calls(self) -> int:
        return len(self.model.requests)

    def add(self, *outcomes: Outcome) -> None:
        self.outcomes.extend(outcomes)

    def fail(self, error: ModelError, times: int = 1) -> None:
        self.add(*(Reply(error=error) for _ in range(times)))

    async def _next(self, request: ModelRequest) -> Reply | str:
        outcome = self.outcomes.pop(0)
        return await outcome() if callable(outcome) else outcome


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def breaker(upstream: Upstream, clock: ManualClock, failures: int = 3) -> CircuitBreakerModel:
    return CircuitBreakerModel(upstream.model, failures=failures, cooldown=30.0, clock=clock)


async def call(model: CircuitBreakerModel) -> str | ModelError:
    """The reply's text, or the model error the stream raised."""
    try:
        async with closing_stream(model.stream(HELLO)) as events:
            return "".join([e.text async for e in events if isinstance(e, TextDelta)])
    except ModelError as error:
        return error


def state(model: CircuitBreakerModel) -> BreakerState:
    """The breaker's state (a call, so that type checkers do not narrow it)."""
    return model.state


async def first_event(events: AsyncIterator[ModelEvent]) -> ModelEvent:
    return await anext(events)


async def refused(model: CircuitBreakerModel) -> ModelUnavailableError:
    outcome = await call(model)
    assert isinstance(outcome, ModelUnavailableError), outcome
    assert outcome.retry_after is not None
    return outcome


async def open_breaker(upstream: Upstream, model: CircuitBreakerModel, failures: int = 3) -> None:
    upstream.fail(DOWN, failures)
    for _ in range(failures):
        assert await call(model) is DOWN
    assert state(model) == "open"


async def test_breaker_opens_after_failures_in_a_row_and_fails_fast(
    upstream: Upstream, clock: ManualClock
) -> None:
    model = breaker(upstream, clock)
    upstream.fail(DOWN)
    upstream.fail(SLOW, 2)
    assert await call(model) is DOWN
    assert await call(model) is SLOW
    assert state(model) == "closed"
    assert await call(model) is SLOW
    assert state(model) == "open"

    error = await refused(model)
    assert error.retry_after == 30
    clock.advance(10)
    error = await refused(model)
    assert error.retry_after == 20
    assert upstream.calls == 3  # failing fast never reaches the model
    assert "openai:upstream is unavailable (3 failures in a row)" in error.message
    assert "it will be tried again in 20s" in error.message
    assert SLOW.message in error.message


async def test_breaker_success_resets_the_count(upstream: Upstream, clock: ManualClock) -> None:
    model = breaker(upstream, clock)
    upstream.fail(DOWN, 2)
    upstream.add("fine")
    upstream.fail(DOWN, 2)
    for _ in range(5):
        await call(model)
    assert state(model) == "closed"


async def test_breaker_counts_failures_after_the_first_token(
    upstream: Upstream, clock: ManualClock
) -> None:
    model = breaker(upstream, clock, failures=2)
    upstream.add(*(Reply("Once upon a time", error=SLOW, fail_after=2) for _ in range(2)))
    assert await call(model) is SLOW
    assert await call(model) is SLOW
    assert state(model) == "open"


async def test_breaker_lets_one_probe_through_after_the_cooldown(
    upstream: Upstream, clock: ManualClock
) -> None:
    model = breaker(upstream, clock)
    await open_breaker(upstream, model)
    clock.advance(30)
    assert state(model) == "half_open"
    answer = asyncio.Event()

    async def slow_answer() -> str:
        await answer.wait()
        return "back again"

    upstream.add(slow_answer, "and again")
    async with closing_stream(model.stream(HELLO)) as probe:
        first = asyncio.create_task(first_event(probe))
        await asyncio.sleep(0)  # the probe is in flight, waiting for the model
        error = await refused(model)
        assert error.retry_after == PROBE_RETRY_AFTER
        assert "checking whether it is back" in error.message
        assert upstream.calls == 4

        answer.set()
        assert await first == TextDelta("back")
        assert state(model) == "closed"  # the first event proves the model answers
    assert await call(model) == "and again"


async def test_breaker_reopens_when_the_probe_fails_with_a_longer_cooldown(
    upstream: Upstream, clock: ManualClock
) -> None:
    model = breaker(upstream, clock)
    await open_breaker(upstream, model)
    for cooldown in (60, 120, 120):  # doubled each time, up to 4x the first
        clock.advance(1000)
        upstream.fail(DOWN)
        assert state(model) == "half_open"
        assert await call(model) is DOWN
        assert state(model) == "open"
        assert (await refused(model)).retry_after == cooldown
    clock.advance(120)
    upstream.add("recovered")
    assert await call(model) == "recovered"
    upstream.fail(DOWN, 3)
    for _ in range(3):
        await call(model)
    assert (await refused(model)).retry_after == 30  # closing reset the cool-down


async def test_breaker_tells_its_listeners_when_it_opens_and_closes(
    upstream: Upstream, clock: ManualClock
) -> None:
    model = breaker(upstream, clock)
    told: list[bool] = []
    model.on_change(told.append)
    upstream.fail(DOWN, 2)
    upstream.add("fine")
    for _ in range(3):
        await call(model)  # two failures, then a success: still closed, nothing to tell
    assert told == []
    await open_breaker(upstream, model)
    await refused(model)  # failing fast is not news
    clock.advance(30)
    upstream.fail(DOWN)
    await call(model)  # the probe fails: open again
    clock.advance(60)
    upstream.add("back")
    assert await call(model) == "back"
    assert told == [True, True, False]


@pytest.mark.parametrize(
    "error",
    [
        ModelRequestRejectedError("The model server rejected the API key (401)."),
        ModelRateLimitedError("The model server is rate limiting requests.", retry_after=3),
    ],
    ids=["rejected", "rate_limited"],
)
async def test_breaker_ignores_errors_that_are_not_the_models_health(
    upstream: Upstream, clock: ManualClock, error: ModelError
) -> None:
    model = breaker(upstream, clock, failures=2)
    upstream.fail(error, 5)
    for _ in range(5):
        assert await call(model) is error
    assert state(model) == "closed"
    upstream.fail(DOWN)
    upstream.fail(error)
    upstream.fail(DOWN)
    for _ in range(3):
        await call(model)
    assert state(model) == "open"  # counted neither way: the count was not reset either
    clock.advance(30)
    upstream.fail(error)
    assert await call(model) is error
    assert state(model) == "half_open"  # a probe that proved nothing: the next one probes
    upstream.add("up")
    assert await call(model) == "up"
    assert state(model) == "closed"


async def test_breaker_ignores_streams_closed_early(upstream: Upstream, clock: ManualClock) -> None:
    model = breaker(upstream, clock, failures=2)
    upstream.fail(DOWN)
    upstream.add("a long story that nobody reads to the end")
    assert await call(model) is DOWN
    async with closing_stream(model.stream(HELLO)) as events:
        assert isinstance(await anext(events), TextDelta)
    assert upstream.model.streams_closed_early == 1
    upstream.fail(DOWN)
    await call(model)
    assert state(model) == "open"  # the closed stream neither failed nor reset the count

    clock.advance(30)
    never = asyncio.Event()

    async def no_answer() -> str:
        await never.wait()
        return "unreachable"

    upstream.add(no_answer, "up")
    cancelled = asyncio.create_task(first_event(model.stream(HELLO)))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert state(model) == "half_open"
    assert await call(model) == "up"  # the cancelled probe freed its place
    assert state(model) == "closed"


async def test_breaker_delegates_to_the_wrapped_model(
    upstream: Upstream, clock: ManualClock
) -> None:
    model = breaker(upstream, clock)
    assert model.wrapped is upstream.model
    assert model.model_id == "openai:upstream"
    assert model.context_window == 4096
    assert model.supports_tools is True
    assert model.count_tokens("two words") == upstream.model.count_tokens("two words")
    await model.start()
    await model.aclose()
    assert upstream.model.closed


async def test_open_services_puts_remote_models_behind_a_breaker() -> None:
    remote = Settings(
        model="openai:gpt-test",
        openai_base_url="http://127.0.0.1:9/v1",
        breaker_failures=2,
        breaker_cooldown_seconds=7,
    )
    async with open_services(remote) as services:
        assert isinstance(services.model, CircuitBreakerModel)
        assert isinstance(services.model.wrapped, OpenAIChatModel)
        assert services.model.model_id == "openai:gpt-test"
    async with open_services(Settings(model="test")) as services:
        assert isinstance(services.model, TestModel)
