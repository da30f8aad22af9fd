"""``RunEvent``: one numbered event of a run, as the API streams it.

A run's events are numbered from 1 in the order they happened; a client that
lost its connection resumes after the last number it saw. ``data`` is final
text: plain for ``session``, ``token`` and ``done``, JSON for the others, so
framing it for SSE is all that is left to do.
"""

from __future__ import annotations

import json
from typing import Literal, NamedTuple

import orjson

EventKind = Literal[
    "session", "run", "token", "tool_call", "tool_result", "citations", "error", "done"
]
FINAL_KINDS: frozenset[str] = frozenset({"done", "error"})


class RunEvent(NamedTuple):
    """One event; a named tuple because one is made per token (see ``TextDelta``)."""

    seq: int
    kind: EventKind
    data: str

    @property
    def final(self) -> bool:
        return self.kind in FINAL_KINDS


def to_json(value: object) -> str:
    """Compact JSON in UTF-8 (orjson; Python's encoder for what orjson refuses).

    What orjson refuses is a lone surrogate (a tool's text decoded with
    ``surrogateescape``, say), an int over 64 bits or a key that is not a
    string; Python's encoder writes it with ASCII escapes, so that the event
    can still go out as UTF-8.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"))


class LineEndings:
    """Turns CR and CRLF into LF across a stream of text pieces.

    SSE cannot carry a bare CR, so the reply is normalised before it is streamed
    or stored. A CRLF split over two pieces (CR at the end of one, LF at the
    start of the next) still becomes one LF.
    """

    def __init__(self) -> None:
        self._after_cr = False

    def __call__(self, text: str) -> str:
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = text.endswith("\r")
        return text.replace("\r\n", "\n").replace("\r", "\n")


def normalise_line_endings(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
