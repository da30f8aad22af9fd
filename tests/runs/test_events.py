"""``to_json``: the JSON in run events (``run``, ``tool_call``, ``tool_result``, ...)."""

from __future__ import annotations

import json

import pytest

from agenthost.runs.events import RunEvent, to_json
from agenthost.server.sse import frame

VALUES: list[object] = [
    {"run_id": "r", "session_id": "s", "model": "m", "agent": "a"},
    {"result": 'Grüße, 東京 🌧\n"quoted"\t\\', "n": [1, 2.5, None, True, {}]},
    {"id": "c", "arguments": '{"city": "Oslo"}'},
    [{"n": 1, "source": "faq.md", "snippet": "<b>&amp;</b>"}],
]
AWKWARD: list[object] = [
    {"result": "half a pair: \ud83c"},  # orjson refuses a lone surrogate
    {"count": 2**70},  # and an int over 64 bits
]


@pytest.mark.parametrize("value", VALUES)
def test_to_json_is_compact_utf8_json_of_the_value(value: object) -> None:
    text = to_json(value)
    assert json.loads(text) == value
    assert text == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("value", AWKWARD)
def test_what_orjson_refuses_is_still_json_that_utf8_can_carry(value: object) -> None:
    text = to_json(value)
    assert json.loads(text) == value
    frame(RunEvent(1, "tool_result", text))  # an SSE frame is UTF-8: this raised before
