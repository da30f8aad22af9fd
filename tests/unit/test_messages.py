"""Message values and their one serialiser."""

from __future__ import annotations

import pytest

from agenthost.messages import (
    Message,
    ToolCall,
    ToolCallId,
    Usage,
    message_from_dict,
    message_to_dict,
)


def test_messages_round_trip_through_the_serialiser() -> None:
    call = ToolCall(ToolCallId("c1"), "calculator", '{"expression": "1+1"}')
    messages = [
        Message.system("rules"),
        Message.user("héllo 👋\nline two"),
        Message.assistant("", tool_calls=(call,)),
        Message.tool("2", tool_call_id=call.id, name="calculator"),
        Message.tool("bad", tool_call_id=call.id, name="calculator", is_error=True),
        Message.assistant("It is 2."),
    ]
    for message in messages:
        assert message_from_dict(message_to_dict(message)) == message


def test_serialised_form_omits_empty_fields() -> None:
    assert message_to_dict(Message.user("hi")) == {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    "data",
    [
        {"role": "wizard", "content": "x"},
        {"role": "user", "content": 3},
        {"role": "assistant", "content": "", "tool_calls": "nope"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": 1, "name": "x"}]},
    ],
)
def test_bad_data_is_rejected(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by field
        message_from_dict(data)


def test_usage_adds_up() -> None:
    total = Usage(10, 2) + Usage(5, 1)
    assert total == Usage(15, 3)
    assert total.total_tokens == 18
