"""A finished run, rebuilt from the store when its live event log is gone.

Used for idempotent retries and resumes that arrive after the run's events have
left the log (or on a process that never had them): the stored messages of the
run give its reply, tool calls and results, and citations (kept on its assistant
messages); the run record gives its status.
"""

from __future__ import annotations

from dataclasses import dataclass

from agenthost.messages import Citation, Usage
from agenthost.runs.events import EventKind, RunEvent, to_json
from agenthost.runs.publisher import citations_json, tool_result_json
from agenthost.stores.base import RunId, RunRecord, Store, StoredMessage
from agenthost.tools.toolset import ToolOutcome

RUN_PAGE = 500


@dataclass(frozen=True, slots=True)
class StoredRun:
    run: RunRecord
    agent: str
    text: str
    tool_outcomes: tuple[ToolOutcome, ...]
    session_tokens: int
    citations: tuple[Citation, ...] = ()

    @property
    def usage(self) -> Usage:
        return self.run.usage


async def load_run(store: Store, run_id: RunId) -> StoredRun:
    run = await store.get_run(run_id)
    session = await store.get_session(run.session_id)
    page = await store.read_page(run.session_id, limit=RUN_PAGE)
    mine = [m for m in page if m.run_id == run_id and m.message.role != "user"]
    return StoredRun(
        run=run,
        agent=session.agent,
        text=_reply_text(mine),
        tool_outcomes=_outcomes(mine),
        session_tokens=session.total_tokens,
        citations=tuple(c for m in mine for c in m.message.citations),
    )


def replay_events(stored: StoredRun) -> list[RunEvent]:
    """The run's events as they would have streamed (its text as one token event)."""
    run = stored.run
    bodies: list[tuple[EventKind, str]] = [
        ("session", run.session_id),
        (
            "run",
            to_json(
                {
                    "run_id": run.id,
                    "session_id": run.session_id,
                    "model": run.model,
                    "agent": stored.agent,
                }
            ),
        ),
    ]
    for outcome in stored.tool_outcomes:
        call = outcome.call
        body = {"id": call.id, "name": call.name, "arguments": call.arguments}
        bodies.append(("tool_call", to_json(body)))
        bodies.append(("tool_result", to_json(tool_result_json(outcome))))
    if stored.citations:
        bodies.append(("citations", citations_json(stored.citations)))
    if stored.text:
        bodies.append(("token", stored.text))
    if run.status in ("failed", "interrupted"):
        message = run.error or "The reply failed"
        bodies.append(("error", to_json({"error": message, "detail": None, "request_id": None})))
    else:
        bodies.append(("done", str(stored.session_tokens)))
    return [RunEvent(seq, kind, data) for seq, (kind, data) in enumerate(bodies, 1)]


def _reply_text(messages: list[StoredMessage]) -> str:
    texts = [m.message.content for m in messages if m.message.role == "assistant"]
    return "\n\n".join(text for text in texts if text)


def _outcomes(messages: list[StoredMessage]) -> tuple[ToolOutcome, ...]:
    calls = {
        call.id: call
        for m in messages
        if m.message.role == "assistant"
        for call in m.message.tool_calls
    }
    outcomes = []
    for m in messages:
        if m.message.role == "tool" and m.message.tool_call_id in calls:
            call = calls[m.message.tool_call_id]
            outcomes.append(ToolOutcome(call, m.message.content, m.message.is_error))
    return tuple(outcomes)
