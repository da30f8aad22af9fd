"""Conversation value types: messages, tool calls, token usage, and their one serialiser.

These are frozen dataclasses so that a history can be shared between the agent
loop, the stores and the HTTP layer without anyone changing it underneath the
others. ``message_to_dict`` / ``message_from_dict`` are the only (de)serialisers;
stores and the HTTP layer both go through them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal, NewType, assert_never

ToolCallId = NewType("ToolCallId", str)
Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model asked for; ``arguments`` is the model's raw JSON text."""

    id: ToolCallId
    name: str
    arguments: str = "{}"


@dataclass(frozen=True, slots=True)
class Citation:
    """A source an answer rests on: ``n`` is the number the answer cites it by (``[n]``)."""

    n: int
    source: str
    heading: str = ""
    snippet: str = ""


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens spent: by one model call, or summed over a turn."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a conversation.

    ``tool_calls`` is set on assistant messages that ask for tools; ``tool_call_id``
    and ``name`` on the tool message that answers one of those calls, and
    ``is_error`` when that answer reports a failure. ``citations`` are the
    sources an assistant message rests on (knowledge agents); models never see
    them, they are kept for the client.
    """

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = field(default=())
    tool_call_id: ToolCallId | None = None
    name: str | None = None
    is_error: bool = False
    citations: tuple[Citation, ...] = field(default=())

    @classmethod
    def system(cls, content: str) -> Message:
        return cls("system", content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls("user", content)

    @classmethod
    def assistant(
        cls,
        content: str,
        *,
        tool_calls: tuple[ToolCall, ...] = (),
        citations: tuple[Citation, ...] = (),
    ) -> Message:
        return cls("assistant", content, tool_calls=tool_calls, citations=citations)

    @classmethod
    def tool(
        cls, content: str, *, tool_call_id: ToolCallId, name: str, is_error: bool = False
    ) -> Message:
        return cls("tool", content, tool_call_id=tool_call_id, name=name, is_error=is_error)


def message_to_dict(message: Message) -> dict[str, object]:
    """The JSON-ready form of a message (OpenAI's field names, minus empty fields)."""
    data: dict[str, object] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        data["tool_calls"] = [
            {"id": call.id, "name": call.name, "arguments": call.arguments}
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        data["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        data["name"] = message.name
    if message.is_error:
        data["is_error"] = True
    if message.citations:
        data["citations"] = [citation_to_dict(c) for c in message.citations]
    return data


def citation_to_dict(citation: Citation) -> dict[str, object]:
    """The JSON form of a citation, as the API shows it (``n``, source, heading, snippet)."""
    return {
        "n": citation.n,
        "source": citation.source,
        "heading": citation.heading,
        "snippet": citation.snippet,
    }


def message_from_dict(data: dict[str, object]) -> Message:
    """Rebuild a message written by ``message_to_dict``; raises ValueError on bad data."""
    role = data.get("role")
    content = data.get("content", "")
    if not isinstance(content, str):
        raise ValueError("message content must be a string")
    match role:
        case "system" | "user" | "assistant" | "tool":
            pass
        case _:
            raise ValueError(f"unknown message role: {role!r}")
    calls = tuple(_tool_call_from_dict(raw) for raw in _list(data.get("tool_calls")))
    call_id = data.get("tool_call_id")
    name = data.get("name")
    return Message(
        role,
        content,
        tool_calls=calls,
        tool_call_id=ToolCallId(call_id) if isinstance(call_id, str) else None,
        name=name if isinstance(name, str) else None,
        is_error=data.get("is_error") is True,
        citations=tuple(_citation_from_dict(raw) for raw in _list(data.get("citations"))),
    )


def messages_to_json(messages: tuple[Message, ...] | list[Message]) -> str:
    return json.dumps([message_to_dict(m) for m in messages], ensure_ascii=False)


def role_label(role: Role) -> str:
    """How a role is named in a plain-text transcript."""
    match role:
        case "system":
            return "System"
        case "user":
            return "User"
        case "assistant":
            return "Assistant"
        case "tool":
            return "Tool"
        case _:
            assert_never(role)


def _list(value: object) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("tool_calls and citations must be lists")
    return value


def _citation_from_dict(raw: object) -> Citation:
    if not isinstance(raw, dict):
        raise ValueError("a citation must be an object")
    n, source = raw.get("n"), raw.get("source")
    heading, snippet = raw.get("heading", ""), raw.get("snippet", "")
    if not (isinstance(n, int) and isinstance(source, str)):
        raise ValueError("a citation needs an integer n and a string source")
    if not (isinstance(heading, str) and isinstance(snippet, str)):
        raise ValueError("a citation's heading and snippet must be strings")
    return Citation(n, source, heading, snippet)


def _tool_call_from_dict(raw: object) -> ToolCall:
    if not isinstance(raw, dict):
        raise ValueError("a tool call must be an object")
    call_id, name, arguments = raw.get("id"), raw.get("name"), raw.get("arguments", "{}")
    if not (isinstance(call_id, str) and isinstance(name, str) and isinstance(arguments, str)):
        raise ValueError("a tool call needs string id, name and arguments")
    return ToolCall(ToolCallId(call_id), name, arguments)
