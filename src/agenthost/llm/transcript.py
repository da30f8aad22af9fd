"""A conversation as a plain-text transcript, for base models that have no chat template.

``render_prompt`` writes a one-line framing and the system messages as a preamble,
then one line per turn, and ends with ``Assistant:`` for the model to continue::

    The following is a chat between a curious user and a knowledgeable AI assistant.
    You are a helpful, friendly assistant. ...

    User: What is the capital of France?
    Assistant: Paris.
    User: And of Italy?
    Assistant:

(The framing line made Gemma 3 270M end its turns cleanly far more often than the
system message alone.) A base model continues the transcript past its own turn,
so ``ReplyDecoder`` cuts the reply where the model starts another turn: at
``User:``, at a new line that opens with another speaker, or at a blank line (a
turn is one paragraph; past a blank line a small model mostly rambles). It
decodes the model's byte pieces incrementally, so a character split across tokens
(an emoji, an accented letter) is never emitted broken, and it holds back text
that might still become a stop or trailing whitespace, so neither ever reaches
the reader. The reply it streams is stripped.

``render_answer_prompt`` is the other style, for one grounded question (the
knowledge agents on the embedded model): the system text (the sources), then
``Question: ...`` and ``Answer:``. A base model answers that far more often than
it answers a chat turn (measured in docs/knowledge.md), and the answer ends with
its line (``ANSWER_STOPS``), before the model starts asking itself more questions.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from typing import assert_never

from agenthost.messages import Message, role_label

FRAMING = "The following is a chat between a curious user and a knowledgeable AI assistant."
STOP_STRINGS = ("User:", "\n\n", "\nSystem:", "\nAssistant:", "\nTool (")
ANSWER_STOPS = ("\n", "Question:")
_TURN_OPENERS = ("User:", "System:", "Assistant:", "Tool (")


def render_prompt(messages: Sequence[Message]) -> str:
    """The transcript of ``messages``, ending with ``Assistant:`` for the model to continue."""
    preamble: list[str] = []
    turns: list[str] = []
    for message in messages:
        text = message.content.strip()
        match message.role:
            case "system" if not turns:
                preamble.append(text)
            case "system" | "user":
                turns.append(f"{role_label(message.role)}: {text}")
            case "assistant":
                calls = [f"[{call.name}({call.arguments})]" for call in message.tool_calls]
                turns.append(" ".join(["Assistant:", *filter(None, [text]), *calls]))
            case "tool":
                turns.append(f"Tool ({message.name or 'tool'}): {text}")
            case _:
                assert_never(message.role)
    turns.append("Assistant:")
    head = "\n".join(part for part in (FRAMING, *preamble) if part)
    return f"{head}\n\n" + "\n".join(turns)


def render_answer_prompt(messages: Sequence[Message]) -> str:
    """System text as paragraphs, then the questions and answers, ending with ``Answer:``."""
    head = [m.content.strip() for m in messages if m.role == "system" and m.content.strip()]
    lines: list[str] = []
    for message in messages:
        if message.role == "user":
            lines.append(f"Question: {message.content.strip()}")
        elif message.role == "assistant" and message.content.strip():
            lines.append(f"Answer: {message.content.strip()}")
    lines.append("Answer:")
    return "\n\n".join([*head, "\n".join(lines)])


class ReplyDecoder:
    """Turns the model's byte pieces into the reply text, cut at the next turn.

    ``feed`` returns the text that is safe to show now (possibly empty);
    ``finish`` returns what was held back, once generation has ended.
    """

    def __init__(self, stops: tuple[str, ...] = STOP_STRINGS) -> None:
        self._stops = stops
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._started = False
        self.stopped = False

    def feed(self, piece: bytes) -> str:
        if self.stopped:
            return ""
        self._pending += self._utf8.decode(piece)
        if not self._started:
            self._pending = self._pending.lstrip()
            self._started = bool(self._pending)
        cut = _first_stop(self._pending, self._stops)
        if cut is not None:
            self.stopped = True
            text, self._pending = self._pending[:cut].rstrip(), ""
            return text
        safe = _safe_length(self._pending, self._stops)
        text, self._pending = self._pending[:safe], self._pending[safe:]
        return text

    def finish(self) -> str:
        if self.stopped:
            return ""
        text = self._pending + self._utf8.decode(b"", final=True)
        self._pending = ""
        line = text.rfind("\n")
        if line >= 0 and _opens_turn(text[line + 1 :].strip()):
            text = text[:line]
        return text.rstrip() if self._started else text.strip()


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    found = [index for stop in stops if (index := text.find(stop)) >= 0]
    return min(found) if found else None


def _safe_length(text: str, stops: tuple[str, ...]) -> int:
    """How much of ``text`` can be shown: not a possible stop's start, nor trailing spaces."""
    end = len(text)
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                end = min(end, len(text) - size)
                break
    return len(text[:end].rstrip())


def _opens_turn(line: str) -> bool:
    return bool(line) and any(opener.startswith(line) for opener in _TURN_OPENERS)
