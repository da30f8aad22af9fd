"""``TurnProgress``: what a running turn has produced so far, to keep it if the turn is cut.

A turn can end early: the model fails mid-reply, the user cancels, the server
stops. Whoever runs the turn feeds every event to a ``TurnProgress`` and, on the
way out, saves ``messages()``: the complete messages (assistant steps and tool
results) plus the text written since the last complete one, so nothing the
user saw is lost (with the citations found for that text).
"""

from __future__ import annotations

from agenthost.agent.loop import STEP_SEPARATOR, AgentEvent, CitationsFound, MessageCompleted
from agenthost.llm.base import TextDelta, UsageReported
from agenthost.messages import Citation, Message, Usage


class TurnProgress:
    def __init__(self) -> None:
        self._complete: list[Message] = []
        self._partial: list[str] = []
        self._cited: list[Citation] = []
        self.usage = Usage()
        self.text_parts: list[str] = []

    def observe(self, event: AgentEvent) -> None:
        match event:
            case TextDelta(text=text):
                self._partial.append(text)
                self.text_parts.append(text)
            case MessageCompleted(message=message):
                self._complete.append(message)
                self._partial.clear()
                if message.role == "assistant":
                    self._cited.clear()
            case CitationsFound(citations=citations):
                self._cited.extend(citations)
            case UsageReported(usage=usage):
                self.usage += usage
            case _:
                pass

    @property
    def text(self) -> str:
        """Everything streamed so far: the reply as the user saw it."""
        return "".join(self.text_parts)

    def messages(self) -> list[Message]:
        """The messages to save: the complete ones and the partial text, if any."""
        partial = "".join(self._partial).removeprefix(STEP_SEPARATOR)
        tail = [Message.assistant(partial, citations=tuple(self._cited))] if partial else []
        return self._complete + tail
