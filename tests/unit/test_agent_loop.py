"""The agent loop: scripted multi-step tool use, max_steps, cancellation, usage."""

from __future__ import annotations

import asyncio
import json

import pytest

from agenthost import (
    Agent,
    AgentEvent,
    Message,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnCompleted,
    TurnOptions,
    Usage,
    UsageReported,
    run_turn,
    stream_turn,
    tool,
)
from agenthost.agent.progress import TurnProgress
from agenthost.errors import ModelUnavailableError
from agenthost.llm.base import ModelRequest
from agenthost.testing import FunctionModel, Reply, call_tool, scripted, simple_token_count


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


AGENT = Agent(name="math", instructions="You do arithmetic.", tools=(add, multiply))


async def collect(stream: object) -> list[AgentEvent]:
    return [event async for event in stream]  # type: ignore[attr-defined]


async def test_loop_runs_scripted_multi_step_tool_calls() -> None:
    first_add = call_tool("add", {"a": 2, "b": 3})
    then_multiply = call_tool("multiply", {"a": 5, "b": 4})
    model = scripted(
        Reply("Let me add.", tool_calls=(first_add,)),
        Reply(tool_calls=(then_multiply,)),
        "The result is 20.",
    )
    events = await collect(stream_turn(AGENT, model, [], Message.user("(2+3)*4?")))

    started = [e.call for e in events if isinstance(e, ToolCallStarted)]
    finished = [e.outcome for e in events if isinstance(e, ToolCallFinished)]
    assert started == [first_add, then_multiply]
    assert [(o.content, o.is_error) for o in finished] == [("5", False), ("20", False)]

    result = events[-1]
    assert isinstance(result, TurnCompleted)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert result.result.text == text == "Let me add.\n\nThe result is 20."
    assert result.result.model_calls == 3
    assert result.result.end == "stop"
    roles = [(m.role, m.tool_call_id) for m in result.result.messages]
    assert roles == [
        ("assistant", None),
        ("tool", first_add.id),
        ("assistant", None),
        ("tool", then_multiply.id),
        ("assistant", None),
    ]

    # Each call sees the tool results so far, after its own call, and the tools offered.
    second = model.requests[1]
    assert [m.role for m in second.messages] == ["system", "user", "assistant", "tool"]
    assert second.messages[-1].content == "5"
    assert [t.name for t in second.tools] == ["add", "multiply"]
    assert model.requests[2].messages[-1].content == "20"


async def test_loop_feeds_tool_errors_back_and_goes_on() -> None:
    model = scripted(
        Reply(tool_calls=(call_tool("add", {"a": "two", "b": 3}),)),
        Reply(tool_calls=(call_tool("divide", {"a": 1}),)),
        "Sorry, I could not compute that.",
    )
    result = await run_turn(AGENT, model, [], Message.user("2+3?"))
    assert [o.is_error for o in result.tool_outcomes] == [True, True]
    assert "a: Input should be a valid integer" in result.tool_outcomes[0].content
    assert "Unknown tool 'divide'" in result.tool_outcomes[1].content
    assert model.requests[1].messages[-1].content == result.tool_outcomes[0].content
    assert result.text == "Sorry, I could not compute that."


async def test_loop_stops_at_max_steps_with_a_clear_message() -> None:
    looping = FunctionModel(lambda _: Reply(tool_calls=(call_tool("add", {"a": 1, "b": 1}),)))
    options = TurnOptions(max_steps=3)
    result = await run_turn(AGENT, looping, [], Message.user("loop"), options=options)
    assert result.end == "max_steps"
    assert result.model_calls == 3
    assert len(looping.requests) == 3
    assert len(result.tool_outcomes) == 3
    assert result.text.startswith("I stopped after 3 steps without reaching a final answer.")
    assert result.messages[-1] == Message.assistant(result.text)


async def test_model_without_tool_support_gets_no_tools_and_its_calls_are_ignored() -> None:
    model = FunctionModel(
        lambda _: Reply("Plain answer.", tool_calls=(call_tool("add", {"a": 1, "b": 2}),)),
        supports_tools=False,
    )
    result = await run_turn(AGENT, model, [], Message.user("1+2?"))
    assert model.requests[0].tools == ()
    assert result.tool_outcomes == ()
    assert result.text == "Plain answer."


async def test_usage_is_summed_from_reported_usage_per_call() -> None:
    model = scripted(
        Reply(tool_calls=(call_tool("add", {"a": 1, "b": 2}),), usage=Usage(100, 10)),
        Reply("3", usage=Usage(130, 1)),
    )
    events = await collect(stream_turn(AGENT, model, [], Message.user("1+2?")))
    per_call = [e.usage for e in events if isinstance(e, UsageReported)]
    assert per_call == [Usage(100, 10), Usage(130, 1)]
    done = events[-1]
    assert isinstance(done, TurnCompleted)
    assert done.result.usage == Usage(230, 11)
    assert done.result.usage.total_tokens == 241


async def test_usage_is_counted_with_the_tokenizer_when_the_provider_reports_none() -> None:
    model = scripted("Four words right here.")
    result = await run_turn(AGENT, model, [], Message.user("Count me please"))
    request = model.requests[0]
    overhead = 4
    expected_prompt = sum(simple_token_count(m.content) + overhead for m in request.messages)
    assert result.usage == Usage(expected_prompt, simple_token_count("Four words right here."))


async def test_cancelling_the_consumer_stops_the_model_promptly() -> None:
    model = FunctionModel(lambda _: Reply("word " * 1000, delay=0.01))
    deltas: list[str] = []
    three_seen = asyncio.Event()

    async def consume() -> None:
        async for event in stream_turn(AGENT, model, [], Message.user("talk")):
            if isinstance(event, TextDelta):
                deltas.append(event.text)
                if len(deltas) == 3:
                    three_seen.set()

    task = asyncio.create_task(consume())
    await three_seen.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert model.streams_closed_early == 1
    assert len(deltas) < 10


async def test_model_failure_mid_stream_propagates_after_the_partial_text() -> None:
    model = FunctionModel(
        lambda _: Reply("one two three", error=ModelUnavailableError("down"), fail_after=2)
    )
    seen: list[str] = []

    async def consume() -> None:
        async for event in stream_turn(AGENT, model, [], Message.user("hi")):
            if isinstance(event, TextDelta):
                seen.append(event.text)

    with pytest.raises(ModelUnavailableError):
        await consume()
    assert "".join(seen) == "one two"


async def test_history_and_turn_options_reach_the_model() -> None:
    def reply(request: ModelRequest) -> str:
        return json.dumps([request.temperature, request.max_tokens])

    model = FunctionModel(reply)
    history = [Message.user("earlier"), Message.assistant("reply")]
    options = TurnOptions(temperature=0.2, max_tokens=50)
    result = await run_turn(AGENT, model, history, Message.user("now"), options=options)
    assert json.loads(result.text) == [0.2, 50]
    assert [m.content for m in model.requests[0].messages] == [
        "You do arithmetic.",
        "earlier",
        "reply",
        "now",
    ]


async def test_progress_keeps_complete_steps_and_partial_text_when_a_turn_fails() -> None:
    add_call = call_tool("add", {"a": 1, "b": 2})
    model = scripted(
        Reply("Adding.", tool_calls=(add_call,)),
        Reply("The sum is three", error=ModelUnavailableError("down"), fail_after=3),
    )
    progress = TurnProgress()

    async def consume() -> None:
        async for event in stream_turn(AGENT, model, [], Message.user("1+2?")):
            progress.observe(event)

    with pytest.raises(ModelUnavailableError):
        await consume()
    assert progress.messages() == [
        Message.assistant("Adding.", tool_calls=(add_call,)),
        Message.tool("3", tool_call_id=add_call.id, name="add"),
        Message.assistant("The sum is"),
    ]
    assert progress.text == "Adding.\n\nThe sum is"


async def test_progress_of_a_completed_turn_matches_its_result() -> None:
    model = scripted(Reply(tool_calls=(call_tool("add", {"a": 1, "b": 2}),)), "3.")
    progress = TurnProgress()
    result = None
    async for event in stream_turn(AGENT, model, [], Message.user("1+2?")):
        progress.observe(event)
        if isinstance(event, TurnCompleted):
            result = event.result
    assert result is not None
    assert tuple(progress.messages()) == result.messages
    assert progress.text == result.text
    assert progress.usage == result.usage
