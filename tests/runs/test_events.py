"""``to_json``: the JSON in run events; ``ReplyText``: the text of ``token`` events."""

from __future__ import annotations

import itertools
import json

import pytest

from agenthost.runs.events import ReplyText, RunEvent, normalise_text, to_json
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


REPLIES = [
    "plain ascii, nothing to do",
    "cr\rcrlf\r\nlf\n\r\r\n",
    "emoji 🎉 whole, ünïcödé",
    "a pair as halves \ud83c\udf89 and a lone low \udc00 then high \ud83d!",
    "\ud83c\r\n\udf89\r",
    "ends with half a pair \ud83c",
    "\udf89\ud83c\ud83c\udf89",
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\r\nb\rc", "a\nb\nc"),
        ("party \ud83c\udf89!", "party 🎉!"),
        ("lone \udc00 and \ud83c.", "lone \ufffd and \ufffd."),
        ("backwards \udf89\ud83c", "backwards \ufffd\ufffd"),
    ],
)
def test_normalise_text_gives_lf_line_endings_and_whole_characters(
    text: str, expected: str
) -> None:
    assert normalise_text(text) == expected
    expected.encode()  # UTF-8 can carry it


@pytest.mark.parametrize("reply", REPLIES)
def test_a_reply_in_pieces_comes_out_as_the_whole_reply_normalised(reply: str) -> None:
    """However the pieces are cut (a CRLF or a pair split between two), streamed == stored."""
    expected = normalise_text(reply)
    for cuts in itertools.chain(
        itertools.combinations(range(1, len(reply)), 1),
        itertools.combinations(range(1, len(reply)), 2),
    ):
        bounds = (0, *cuts, len(reply))
        pieces = [reply[a:b] for a, b in itertools.pairwise(bounds)]
        text = ReplyText()
        out = [text(piece) for piece in pieces]
        out.append(text.flush())
        assert "".join(out) == expected, pieces
        for piece in out:
            piece.encode()  # each token event is UTF-8 on its own


def test_half_a_pair_at_the_end_of_a_piece_waits_for_the_next() -> None:
    text = ReplyText()
    assert text("party \ud83c") == "party "
    assert text("\udf89!") == "🎉!"
    assert text("and \ud83c") == "and "
    assert text.flush() == "\ufffd"
    assert text.flush() == ""
