"""HTTP schemas: the request and response bodies of the API (``../shared/API.md``).

Field names are the contract's: the lesson's (``message``, ``session_id``,
``temperature``, ``response``, ``tokens_used``, ``model``) and the extensions.
Limits that depend on settings (message length, ``max_tokens`` ceiling) are
checked again in the routes against the server's configuration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MESSAGE_MAX_CHARS = 5000


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(
        min_length=1, max_length=MESSAGE_MAX_CHARS, description="The user's message."
    )
    session_id: str | None = Field(
        default=None, description="Continue this session; omitted: a new session is created."
    )
    temperature: float = Field(
        default=0.7, ge=0.0, le=2.0, description="Sampling temperature (0 = deterministic)."
    )
    agent: str | None = Field(
        default=None, max_length=64, description="The agent to answer (default: the server's)."
    )
    max_tokens: int | None = Field(
        default=None, ge=1, description="Longest reply, in tokens (bounded by the server)."
    )


class UsagePublic(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ToolCallPublic(BaseModel):
    id: str
    name: str
    arguments: str
    result: str | None = None
    error: str | None = None


class CitationPublic(BaseModel):
    n: int = Field(description="The number the reply cites this source by, as [n].")
    source: str = Field(description="The document: its path as ingested.")
    heading: str = Field(description="The section of the document.")
    snippet: str = Field(description="The passage the answer rests on (shortened).")


class ChatResponse(BaseModel):
    response: str = Field(description="The agent's reply.")
    session_id: str
    tokens_used: int = Field(description="Tokens the whole session has used so far.")
    model: str
    run_id: str
    usage: UsagePublic = Field(description="Tokens of this turn.")
    tool_calls: list[ToolCallPublic] = Field(default_factory=list)
    citations: list[CitationPublic] = Field(
        default_factory=list, description="The sources the reply rests on (knowledge agents)."
    )
    status: Literal["completed", "cancelled"] = "completed"


class SessionCreateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str | None = Field(default=None, max_length=64)
    title: str = Field(default="", max_length=200)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=32)


class SessionCreated(BaseModel):
    session_id: str


class MessagePublic(BaseModel):
    id: str
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: list[ToolCallPublic] = Field(default_factory=list)
    tool_call_id: str | None = None
    citations: list[CitationPublic] = Field(default_factory=list)
    created_at: datetime
    run_id: str | None


class SessionPublic(BaseModel):
    session_id: str
    message_count: int
    tokens_used: int
    agent: str
    title: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, str] = Field(default_factory=dict)


class SessionDetail(SessionPublic):
    messages: list[MessagePublic]
    has_more: bool = Field(description="Older messages exist: pass ?before=<first id>.")


class SessionList(BaseModel):
    sessions: list[SessionPublic]
    next_cursor: str | None


class HealthResponse(BaseModel):
    status: Literal["healthy"] = "healthy"
    sessions_active: int
    version: str


class ReadyResponse(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str]


class ToolPublic(BaseModel):
    name: str
    description: str
    parameters: dict[str, object]


class AgentPublic(BaseModel):
    name: str
    description: str
    tools: list[ToolPublic]
    default: bool


class AgentList(BaseModel):
    agents: list[AgentPublic]
    model: str


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str


class ErrorResponse(BaseModel):
    error: str
    detail: list[ErrorDetail] | str | None = None
    request_id: str | None = None


class CancelResponse(BaseModel):
    run_id: str
    cancelled: bool
