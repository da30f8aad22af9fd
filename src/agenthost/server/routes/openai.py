"""The OpenAI-compatible endpoint: ``POST /v1/chat/completions`` and ``GET /v1/models``.

``model`` names an agent. Stateless by default: the client sends the history,
the agent's own system prompt comes first, and the agent's tools run here (the
reply is the agent's final answer; tool steps are not echoed as tool calls).
With ``session_id`` in the body (or ``X-Session-ID``), the last user message is
sent to that stored session as a regular run, under the same ownership rules
as ``/chat``. Errors use OpenAI's shape so the SDKs raise the right class.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agenthost.agent.loop import TurnCompleted, TurnOptions, stream_turn
from agenthost.errors import AgentHostError, InvalidRequestError, ModelTimeoutError
from agenthost.llm.base import TextDelta, UsageReported
from agenthost.messages import Message, ToolCallId, Usage
from agenthost.observability.telemetry import TurnWatch
from agenthost.runs.events import ReplyText, to_json
from agenthost.runs.turn import TurnRequest
from agenthost.server.capacity import reserve_capacity
from agenthost.server.deps import ServicesDep, WorkDep
from agenthost.server.errors import request_id_of
from agenthost.server.sse import EventStreamResponse
from agenthost.services import ServerServices
from agenthost.settings import Settings
from agenthost.stores.base import Owner, SessionId
from agenthost.stores.ids import new_hex_id

router = APIRouter(prefix="/v1", tags=["openai"])


class ContentPart(BaseModel):
    type: str
    text: str | None = None


class ChatMessageIn(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # SDKs send fields we have no use for

    model: str = Field(max_length=64)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int = Field(default=1, ge=1, le=1)
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class _End:
    usage: Usage
    finish_reason: str
    error: AgentHostError | None = None


@router.get("/models")
async def list_models(services: ServicesDep) -> dict[str, object]:
    """The hosted agents, as OpenAI models."""
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "agenthost"}
            for name in services.core.agents.names
        ],
    }


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: CompletionRequest,
    request: Request,
    work: WorkDep,
    x_session_id: Annotated[str | None, Header(alias="X-Session-ID", max_length=64)] = None,
) -> dict[str, object] | StreamingResponse:
    """OpenAI's chat completions, answered by the agent named in ``model``."""
    services, settings, owner = work.services, work.settings, work.owner
    session_id = body.session_id or x_session_id
    pieces = (
        _session_turn(body, SessionId(session_id), request, services, settings, owner)
        if session_id
        else _stateless_turn(body, request, services, settings)
    )
    completion_id = f"chatcmpl-{new_hex_id()}"
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        first = await anext(pieces)  # errors before the first piece answer with a status
        chunks = _chunks(first, pieces, completion_id, body.model, include_usage)
        return EventStreamResponse(chunks, media_type="text/event-stream; charset=utf-8")
    text: list[str] = []
    end: _End | None = None
    # Read to the end, not just to the _End piece: the turn's bookkeeping (metrics,
    # settling the rate limits) runs when its generator finishes.
    async for piece in pieces:
        if isinstance(piece, str):
            text.append(piece)
        elif end is None:
            end = piece
    if end is None:
        raise AssertionError("a turn always ends")  # pragma: no cover
    if end.error is not None:
        raise end.error
    return _completion(completion_id, body.model, "".join(text), end)


def _reply_budget(body: CompletionRequest, settings: Settings) -> int | None:
    wanted = body.max_completion_tokens or body.max_tokens
    if wanted is not None and wanted > settings.max_reply_tokens:
        raise InvalidRequestError(
            f"max_tokens is above this server's limit of {settings.max_reply_tokens}"
        )
    return wanted


async def _stateless_turn(
    body: CompletionRequest, request: Request, services: ServerServices, settings: Settings
) -> AsyncIterator[str | _End]:
    agent = services.core.agents.get(body.model)
    history = [_message(m) for m in body.messages]
    last = history.pop()
    if last.role != "user":
        raise InvalidRequestError("The last message must be the user's")
    _check_length(last, settings)
    max_tokens = _reply_budget(body, settings)
    options = TurnOptions(
        temperature=body.temperature,
        max_tokens=max_tokens,
        max_steps=min(agent.max_steps, settings.max_tool_steps),
    )
    reply_text = ReplyText()
    finishers = await reserve_capacity(request, services, last.content, max_tokens)
    usage = Usage()
    watch: TurnWatch | None = None
    status, failure = "cancelled", None  # cancelled: the client left before the end
    try:
        yield ""  # the request is valid: the response can start
        model_id = services.core.model.model_id
        watch = services.telemetry.watch(agent=agent.name, model=model_id, message=last.content)
        async with asyncio.timeout(settings.max_turn_seconds):
            stream = stream_turn(agent, services.core.model, history, last, options=options)
            async for event in stream:
                watch.observe(event)
                if isinstance(event, TextDelta):
                    yield reply_text(event.text)
                elif isinstance(event, UsageReported):
                    usage += event.usage
                elif isinstance(event, TurnCompleted):
                    status = "completed"
                    yield reply_text.flush()
                    finish = "length" if event.result.end == "length" else "stop"
                    yield _End(event.result.usage, finish)
    except AgentHostError as exc:
        status, failure = "failed", exc
        yield reply_text.flush()
        yield _End(usage, "error", exc)
    except TimeoutError:
        message = f"The reply took longer than {settings.max_turn_seconds:g} s"
        status, failure = "failed", ModelTimeoutError(message, phase="turn")
        yield reply_text.flush()
        yield _End(usage, "error", failure)
    finally:  # also when the response ended before the turn began
        if watch is not None:
            watch.finish(status, usage, error=failure)
        for settle in finishers:
            await settle(usage)


async def _session_turn(
    body: CompletionRequest,
    session_id: SessionId,
    request: Request,
    services: ServerServices,
    settings: Settings,
    owner: Owner,
) -> AsyncIterator[str | _End]:
    last = _message(body.messages[-1])
    if last.role != "user":
        raise InvalidRequestError("The last message must be the user's")
    _check_length(last, settings)
    max_tokens = _reply_budget(body, settings)
    finishers = await reserve_capacity(request, services, last.content, max_tokens)
    try:
        started = await services.runs.start(
            TurnRequest(
                message=last.content,
                owner=owner,
                session_id=session_id,
                agent=body.model,
                temperature=body.temperature,
                max_tokens=max_tokens,
                request_id=request_id_of(request),
                finishers=finishers,
            )
        )
    except BaseException:
        for finish in finishers:
            await finish(Usage())
        raise
    finished = started.outcome()
    yield ""
    async for event in services.runs.follow(started.info.run_id):
        if event is not None and event.kind == "token":
            yield event.data
    outcome = await finished
    failed = outcome.status in ("failed", "interrupted")
    yield _End(outcome.usage, "error" if failed else "stop", outcome.error if failed else None)


def _check_length(message: Message, settings: Settings) -> None:
    if len(message.content) > settings.max_message_chars:
        raise InvalidRequestError(
            f"The message is longer than {settings.max_message_chars} characters"
        )


def _message(raw: ChatMessageIn) -> Message:
    if isinstance(raw.content, list):
        if any(part.type != "text" for part in raw.content):
            raise InvalidRequestError("Only text content is supported")
        content = "".join(part.text or "" for part in raw.content)
    else:
        content = raw.content or ""
    match raw.role:
        case "system" | "developer":
            return Message.system(content)
        case "user":
            return Message.user(content)
        case "assistant":
            return Message.assistant(content)
        case "tool":
            call_id = ToolCallId(raw.tool_call_id or "")
            return Message.tool(content, tool_call_id=call_id, name=raw.name or "tool")


def _completion(completion_id: str, model: str, text: str, end: _End) -> dict[str, object]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": end.finish_reason,
            }
        ],
        "usage": _usage(end.usage),
    }


async def _chunks(
    first: str | _End,
    rest: AsyncIterator[str | _End],
    completion_id: str,
    model: str,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    created = int(time.time())

    def chunk(delta: dict[str, str], finish: str | None) -> bytes:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + to_json(body).encode() + b"\n\n"

    yield chunk({"role": "assistant", "content": ""}, None)
    pending: list[str | _End] = [first]
    async for piece in _chain(pending, rest):
        if isinstance(piece, str):
            if piece:
                yield chunk({"content": piece}, None)
            continue
        if piece.error is not None:
            error = {"message": piece.error.message, "type": "upstream_error", "code": None}
            yield b"data: " + to_json({"error": error}).encode() + b"\n\n"
            return
        yield chunk({}, piece.finish_reason)
        if include_usage:
            usage_chunk = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": _usage(piece.usage),
            }
            yield b"data: " + to_json(usage_chunk).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


async def _chain(
    first: list[str | _End], rest: AsyncIterator[str | _End]
) -> AsyncIterator[str | _End]:
    for piece in first:
        yield piece
    async for piece in rest:
        yield piece


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
