"""What a run is asked (``TurnRequest``) and what it gives (``StartedRun``, ``RunOutcome``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from agenthost.errors import AgentHostError
from agenthost.messages import Citation, Usage
from agenthost.stores.base import FinalRunStatus, Owner, RunId, SessionId
from agenthost.tools.toolset import ToolOutcome

StopReason = Literal["cancelled", "interrupted"]
Finisher = Callable[[Usage], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """A user's message and how to answer it (already validated by the caller)."""

    message: str
    owner: Owner
    session_id: SessionId | None = None
    agent: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    request_id: str | None = None
    finishers: tuple[Finisher, ...] = ()
    """Called with the turn's usage when the run has ended (limits settle here)."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: RunId
    session_id: SessionId
    agent: str
    model: str


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended, for callers that wait for the whole reply."""

    info: RunInfo
    status: FinalRunStatus
    text: str
    usage: Usage
    tool_outcomes: tuple[ToolOutcome, ...]
    session_tokens: int
    error: AgentHostError | None = None
    citations: tuple[Citation, ...] = ()


@dataclass(frozen=True, slots=True)
class StartedRun:
    """A run this process has started; it may already have ended when the caller gets this.

    Its first step (up to the model's request) runs before ``RunManager.start``
    returns, so a quick reply can be whole by then: ``outcome`` is how to wait for
    it either way (``RunManager.outcome`` only knows runs still going).
    """

    info: RunInfo
    ended: asyncio.Future[RunOutcome]

    def outcome(self) -> asyncio.Future[RunOutcome]:
        """How the run ends; awaiting it never cancels the run itself."""
        return asyncio.shield(self.ended)
