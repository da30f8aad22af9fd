"""The context window: newest messages that fit, tool results never without their calls."""

from __future__ import annotations

import pytest

from agenthost.agent.memory import select_window
from agenthost.errors import ContextWindowExceededError
from agenthost.messages import Message, ToolCall, ToolCallId


def cost(message: Message) -> int:
    return 10 + len(message.content)  # deterministic, easy to reason about


def exchange(i: int) -> list[Message]:
    return [Message.user(f"q {i:04d}"), Message.assistant(f"a {i:04d}")]  # 16 tokens each


def tool_step(i: int) -> list[Message]:
    call = ToolCall(ToolCallId(f"c{i}"), "lookup", "{}")
    return [
        Message.assistant("", tool_calls=(call,)),
        Message.tool(f"result {i}", tool_call_id=call.id, name="lookup"),
    ]


SYSTEM = Message.system("be brief")


def test_window_keeps_the_newest_messages_that_fit() -> None:
    history = [m for i in range(1000) for m in exchange(i)]
    now = Message.user("latest")
    window = select_window(SYSTEM, history, [now], budget=300, count=cost)
    assert window[0] == SYSTEM
    assert window[-1] == now
    assert sum(cost(m) for m in window) <= 300
    kept = window[1:-1]
    assert kept == history[-len(kept) :]  # a contiguous tail
    assert len(kept) == (300 - cost(SYSTEM) - cost(now)) // 16


def test_window_is_deterministic() -> None:
    history = [m for i in range(200) for m in exchange(i)]
    now = Message.user("latest")
    first = select_window(SYSTEM, history, [now], budget=500, count=cost)
    assert select_window(SYSTEM, history, [now], budget=500, count=cost) == first


def test_a_tool_result_never_travels_without_its_call() -> None:
    history = [*exchange(0), *tool_step(1), Message.assistant("done"), *exchange(2)]
    now = Message.user("next")
    for budget in range(50, 400, 3):
        try:
            window = select_window(SYSTEM, history, [now], budget=budget, count=cost)
        except ContextWindowExceededError:
            continue
        for index, message in enumerate(window):
            if message.role == "tool":
                previous = window[index - 1]
                assert previous.role == "assistant"
                assert message.tool_call_id in {c.id for c in previous.tool_calls}


def test_orphan_results_and_unanswered_calls_are_dropped() -> None:
    call = ToolCall(ToolCallId("lost"), "lookup", "{}")
    history = [
        Message.tool("orphan", tool_call_id=ToolCallId("gone"), name="lookup"),
        Message.assistant("thinking", tool_calls=(call,)),  # crashed before its result
        *exchange(1),
    ]
    window = select_window(None, history, [Message.user("hi")], budget=10_000, count=cost)
    assert [m.content for m in window] == ["thinking", "q 0001", "a 0001", "hi"]
    assert window[0].tool_calls == ()


def test_the_current_turn_is_kept_before_older_history() -> None:
    history = [m for i in range(50) for m in exchange(i)]
    turn = [Message.user("compute"), *tool_step(7), *tool_step(8)]
    window = select_window(SYSTEM, history, turn, budget=100, count=cost)
    assert window[:2] == [SYSTEM, turn[0]]
    assert window[2:] == turn[-4:]  # both steps fit, no room for history


def test_the_user_message_stays_even_when_old_steps_must_go() -> None:
    turn = [Message.user("compute"), *tool_step(1), *tool_step(2), *tool_step(3)]
    window = select_window(SYSTEM, [], turn, budget=80, count=cost)
    assert window[:2] == [SYSTEM, turn[0]]
    assert window[2:] == turn[-2:]


def test_a_message_that_cannot_fit_is_a_clear_error() -> None:
    with pytest.raises(ContextWindowExceededError, match="too long for this model"):
        select_window(SYSTEM, [], [Message.user("x" * 500)], budget=100, count=cost)
