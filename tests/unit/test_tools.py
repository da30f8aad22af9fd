"""@tool schemas and validation, and Toolset turning every failure into a tool result."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Literal

import pydantic
import pytest

from agenthost import Toolset, tool
from agenthost.errors import ConfigurationError, ToolError
from agenthost.messages import ToolCall, ToolCallId
from agenthost.testing import ManualClock
from agenthost.tools.builtin import calculate, calculator_tool, current_time_tool


class Unit(Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


@tool
def weather(city: str, days: int = 1, unit: Unit = Unit.CELSIUS) -> dict[str, object]:
    """Get the weather forecast.

    Looks it up in a table.

    Args:
        city: The city's name.
        days: How many days ahead.
        unit: The temperature unit.
    """
    return {"city": city, "days": days, "unit": unit.value}


def call(name: str, arguments: object) -> ToolCall:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(ToolCallId("call_1"), name, raw)


def test_tool_schema_comes_from_signature_and_docstring() -> None:
    assert weather.name == "weather"
    assert weather.description == "Get the weather forecast.\n\nLooks it up in a table."
    schema = weather.parameters
    assert schema["type"] == "object"
    assert schema["required"] == ["city"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["city"] == {"type": "string", "description": "The city's name."}
    assert props["days"] == {"type": "integer", "default": 1, "description": "How many days ahead."}
    assert props["unit"]["description"] == "The temperature unit."
    assert schema["$defs"]["Unit"]["enum"] == ["celsius", "fahrenheit"]


def test_tool_schema_supports_annotated_constraints_and_literals() -> None:
    @tool(name="pick", description="Pick one.", timeout=2)
    def choose(
        option: Literal["a", "b"], count: Annotated[int, pydantic.Field(ge=1, le=3)] = 1
    ) -> str:
        return option * count

    assert choose.name == "pick"
    assert choose.description == "Pick one."
    assert choose.timeout == 2
    assert choose.parameters["properties"]["option"]["enum"] == ["a", "b"]
    assert choose.parameters["properties"]["count"]["maximum"] == 3


def test_tool_stays_callable_as_the_function() -> None:
    assert weather("Oslo") == {"city": "Oslo", "days": 1, "unit": "celsius"}


async def test_tool_call_validates_and_renders_json() -> None:
    result = await weather.call('{"city": "Oslo", "days": "3", "unit": "fahrenheit"}')
    assert json.loads(result) == {"city": "Oslo", "days": 3, "unit": "fahrenheit"}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("{not json", "arguments are not valid JSON"),
        ("[1, 2]", "arguments must be a JSON object"),
        ("{}", "city: Field required"),
        ('{"city": "Oslo", "days": "many"}', "days: Input should be a valid integer"),
        ('{"city": "Oslo", "wind": true}', "wind: Extra inputs are not permitted"),
    ],
)
async def test_invalid_arguments_become_tool_errors(arguments: str, expected: str) -> None:
    with pytest.raises(ToolError, match=expected):
        await weather.call(arguments)


def test_tool_rejects_variadic_parameters() -> None:
    def bad(*values: int) -> int:
        return sum(values)

    with pytest.raises(ConfigurationError, match="passable by keyword"):
        tool(bad)


async def test_toolset_turns_failures_into_results_the_model_can_read() -> None:
    @tool
    def explode() -> str:
        """Always fails."""
        raise RuntimeError("disk on fire")

    @tool
    def refuse(reason: str) -> str:
        """Refuses politely."""
        raise ToolError(reason)

    toolset = Toolset([weather, explode, refuse])
    unknown = await toolset.execute(call("teleport", {}))
    assert unknown.is_error
    assert "Unknown tool 'teleport'" in unknown.content
    assert "weather, explode, refuse" in unknown.content

    invalid = await toolset.execute(call("weather", {"days": 2}))
    assert invalid.is_error
    assert "city: Field required" in invalid.content

    crashed = await toolset.execute(call("explode", {}))
    assert crashed.is_error
    assert crashed.content == "explode failed: RuntimeError: disk on fire"

    refused = await toolset.execute(call("refuse", {"reason": "not today"}))
    assert refused.is_error
    assert refused.content == "Error from refuse: not today"

    ok = await toolset.execute(call("weather", {"city": "Rome"}))
    assert not ok.is_error
    assert json.loads(ok.content)["city"] == "Rome"


async def test_toolset_enforces_the_timeout_of_async_and_sync_tools() -> None:
    @tool(timeout=0.05)
    async def slow_async() -> str:
        """Sleeps."""
        await asyncio.sleep(5)
        return "late"

    @tool(timeout=0.05)
    def slow_sync() -> str:
        """Blocks a worker thread (never the event loop)."""
        time.sleep(0.3)
        return "late"

    toolset = Toolset([slow_async, slow_sync])
    started = time.monotonic()
    outcome = await toolset.execute(call("slow_async", {}))
    assert outcome.is_error
    assert outcome.content == "slow_async timed out after 0.05 s."
    outcome = await toolset.execute(call("slow_sync", {}))
    assert outcome.content == "slow_sync timed out after 0.05 s."
    assert time.monotonic() - started < 0.3


async def test_toolset_cuts_huge_results() -> None:
    @tool
    def flood() -> str:
        """Returns a lot."""
        return "x" * 100

    outcome = await Toolset([flood], max_result_chars=10).execute(call("flood", {}))
    assert outcome.content == "x" * 10 + "\n[... 90 more characters cut]"


async def test_toolset_results_are_text_utf8_can_carry() -> None:
    @tool
    def read_raw() -> str:
        """Reads bytes as surrogateescape decodes them."""
        return b"caf\xe9 \xf0\x9f\x8e\x89".decode("utf-8", "surrogateescape")

    outcome = await Toolset([read_raw]).execute(call("read_raw", {}))
    assert outcome.content == "caf\ufffd 🎉"
    outcome.content.encode()


def test_toolset_rejects_duplicate_names() -> None:
    with pytest.raises(ConfigurationError, match="two tools are named 'weather'"):
        Toolset([weather, weather])


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2 + 3 * 4", "14"),
        ("(2 + 3) * 4", "20"),
        ("7 / 2", "3.5"),
        ("7 // 2", "3"),
        ("-2 ** 2", "-4"),
        ("2 ** 10", "1024"),
        ("sqrt(16) + abs(-1)", "5"),
        ("round(pi, 3)", "3.142"),
        ("max(1, 5, 3)", "5"),
        ("0.1 + 0.2", "0.3"),
        ("10 % 4", "2"),
    ],
)
def test_calculator_evaluates_arithmetic(expression: str, expected: str) -> None:
    assert calculate(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("__import__('os').system('true')", "unsupported"),
        ("open('/etc/passwd')", "unsupported"),
        ("(1).__class__", "unsupported"),
        ("x + 1", "unsupported"),
        ("1 / 0", "division by zero"),
        ("9 ** 9 ** 9", "exponent larger than"),
        ("2 +", "not an arithmetic expression"),
        ("True + 1", "booleans"),
        ("sqrt(-1)", "cannot compute"),
        ("1" * 600, "longer than 500"),
    ],
)
def test_calculator_refuses_anything_but_arithmetic(expression: str, expected: str) -> None:
    with pytest.raises(ToolError, match=expected):
        calculate(expression)


async def test_calculator_tool_reports_errors_as_results() -> None:
    outcome = await Toolset([calculator_tool()]).execute(call("calculator", {"expression": "1/0"}))
    assert outcome.is_error
    assert outcome.content == "Error from calculator: division by zero"


async def test_current_time_reads_the_clock_in_a_time_zone() -> None:
    clock = ManualClock(datetime(2026, 7, 1, 12, 30, tzinfo=UTC))
    current = current_time_tool(clock)
    assert await current.call('{"timezone": "Europe/Paris"}') == (
        "Wednesday 2026-07-01 14:30:00 CEST (UTC+0200)"
    )
    assert await current.call("{}") == "Wednesday 2026-07-01 12:30:00 UTC (UTC+0000)"
    with pytest.raises(ToolError, match="unknown time zone 'Mars/Base'"):
        await current.call('{"timezone": "Mars/Base"}')
