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

from agenthost.text import whole_characters

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


class ReplyText:
    """Makes a reply's text pieces fit to stream and store: LF line endings, whole characters.

    SSE cannot carry a bare CR, so CR and CRLF become LF, and a CRLF split over
    two pieces (CR at the end of one, LF at the start of the next) still becomes
    one LF. UTF-8 cannot carry a surrogate, which a model server's JSON may hold
    (``"\\ud83c"`` in one chunk, ``"\\udf89"`` in the next): a pair split over
    two pieces is joined into its character, and a lone half becomes U+FFFD.
    ``flush`` gives what the end of the reply leaves (U+FFFD for a held half),
    so the pieces put together equal ``normalise_text`` of the whole reply: what
    is streamed is what is stored.
    """

    def __init__(self) -> None:
        self._after_cr = False
        self._high = ""  # the first half of a pair, held until the next piece

    def __call__(self, text: str) -> str:
        if self._high:
            text, self._high = self._high + text, ""
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = text.endswith("\r")
        if not text.isascii() and "\ud800" <= text[-1] <= "\udbff":
            text, self._high = text[:-1], text[-1]
        return normalise_text(text)

    def flush(self) -> str:
        """What is left at the end of the reply ('' unless it ended with half a pair)."""
        high, self._high = self._high, ""
        return normalise_text(high)


def normalise_text(text: str) -> str:
    """``text`` with LF line endings and whole characters (see ``ReplyText``)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return whole_characters(text)
