"""``RunPublisher``: turns what a run does into its numbered API events.

The order of a run's events is fixed by the contract: ``session``, ``run``, then
``token``, ``tool_call``, ``tool_result`` (and ``citations``) as they happen,
and last ``done`` (the session's total tokens) or ``error`` (the envelope).
Token text is made fit for SSE and UTF-8 here, once (``ReplyText``: LF line
endings, whole characters), so what is streamed and what is stored are the
same bytes. A ``citations`` event lists the sources found since the previous
one (``n`` is unique within the run), so a client keeps them all by appending.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from agenthost.agent.loop import AgentEvent, CitationsFound, ToolCallFinished, ToolCallStarted
from agenthost.errors import AgentHostError
from agenthost.llm.base import TextDelta
from agenthost.messages import Citation, Message, citation_to_dict
from agenthost.runs.events import EventKind, ReplyText, RunEvent, normalise_text, to_json
from agenthost.runs.log import RunEventLog
from agenthost.tools.toolset import ToolOutcome

RETRY_AFTER_INTERRUPTED = 5


class RunPublisher:
    def __init__(self, log: RunEventLog, run_id: str, *, request_id: str | None) -> None:
        self._log = log
        self._run_id = run_id
        self._request_id = request_id
        self._seq = 0
        self._reply_text = ReplyText()
        self._text: list[str] = []
        self.tool_outcomes: list[ToolOutcome] = []
        self.citations: list[Citation] = []

    @property
    def text(self) -> str:
        """The reply as streamed so far."""
        return "".join(self._text)

    def opening(self, session_id: str, run_id: str, model: str, agent: str) -> None:
        self._emit("session", session_id)
        self._emit(
            "run",
            to_json({"run_id": run_id, "session_id": session_id, "model": model, "agent": agent}),
        )

    def agent_event(self, event: AgentEvent) -> None:
        match event:
            case TextDelta(text=text):
                self._token(self._reply_text(text))
            case ToolCallStarted(call=call):
                self._emit(
                    "tool_call",
                    to_json({"id": call.id, "name": call.name, "arguments": call.arguments}),
                )
            case ToolCallFinished(outcome=outcome):
                self.tool_outcomes.append(outcome)
                self._emit("tool_result", to_json(tool_result_json(outcome)))
            case CitationsFound(citations=citations):
                self.citations.extend(citations)
                self._emit("citations", citations_json(citations))
            case _:
                pass

    def closing(self, status: str, error: AgentHostError | None, session_tokens: int) -> None:
        self._token(self._reply_text.flush())
        if error is not None and status in ("failed", "interrupted"):
            body = self.envelope(error)
            if status == "interrupted":
                body["retry_after"] = RETRY_AFTER_INTERRUPTED  # send it again, elsewhere
            self._emit("error", to_json(body))
        else:
            self._emit("done", str(session_tokens))

    def envelope(self, error: AgentHostError) -> dict[str, object]:
        return {"error": error.message, "detail": None, "request_id": self._request_id}

    @staticmethod
    def normalised(messages: Iterable[Message]) -> list[Message]:
        """The messages to store, with the same text as what was streamed."""
        return [
            replace(m, content=content)
            if m.role == "assistant" and (content := normalise_text(m.content)) != m.content
            else m
            for m in messages
        ]

    def _token(self, text: str) -> None:
        if text:
            self._text.append(text)
            self._emit("token", text)

    def _emit(self, kind: EventKind, data: str) -> None:
        self._seq += 1
        self._log.append(self._run_id, RunEvent(self._seq, kind, data))


def tool_result_json(outcome: ToolOutcome) -> dict[str, object]:
    body: dict[str, object] = {"id": outcome.call.id, "name": outcome.call.name}
    body["error" if outcome.is_error else "result"] = outcome.content
    return body


def citations_json(citations: Iterable[Citation]) -> str:
    return to_json([citation_to_dict(c) for c in citations])
