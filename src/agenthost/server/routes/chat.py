"""``POST /chat`` and ``POST /chat/stream``: send a message, get the reply whole or streamed.

Both start a run that belongs to the server (see ``runs.manager``): the HTTP
request only watches it. With ``Idempotency-Key``, a retry of the same request
gets the same run back (replayed, the model is not called again); the same key
with another body is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from agenthost.errors import InvalidRequestError, ModelUnavailableError, ServerStoppingError
from agenthost.messages import Citation, Usage
from agenthost.runs.replay import load_run, replay_events
from agenthost.runs.turn import RunInfo, RunOutcome, TurnRequest
from agenthost.server.auth import add_response_headers
from agenthost.server.capacity import reserve_capacity
from agenthost.server.deps import Work, WorkDep
from agenthost.server.errors import request_id_of
from agenthost.server.schemas import (
    ChatRequest,
    ChatResponse,
    CitationPublic,
    ErrorResponse,
    ToolCallPublic,
    UsagePublic,
)
from agenthost.server.sse import event_stream, iterate_events
from agenthost.services import ServerServices
from agenthost.settings import Settings
from agenthost.stores.base import RunId, SessionId
from agenthost.tools.toolset import ToolOutcome

router = APIRouter(tags=["chat"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Retrying with the same key and body returns the same reply.",
    ),
]
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (404, 409, 413, 415, 422, 429, 502, 503, 504)
}


@router.post("/chat", response_model=ChatResponse, responses=ERRORS)
async def chat(
    body: ChatRequest, request: Request, work: WorkDep, idempotency_key: IdempotencyKey = None
) -> ChatResponse:
    """Send a message and get the whole reply."""
    services = work.services
    info, ending = await _start(body, request, work, idempotency_key)
    add_response_headers(request, _run_headers(info))  # on errors too: find the partial reply
    if ending is not None:
        outcome = await asyncio.shield(ending)  # a client gone does not cancel the run
        if outcome.error is not None and outcome.status != "cancelled":
            raise outcome.error
        return _response(outcome)
    stored = await load_run(services.store, info.run_id)
    if stored.run.status == "interrupted":
        raise ServerStoppingError(stored.run.error or "The reply was interrupted")
    if stored.run.status == "failed":  # replayed: the model failed the first time
        raise ModelUnavailableError(stored.run.error or "The reply failed")
    return ChatResponse(
        response=stored.text,
        session_id=info.session_id,
        tokens_used=stored.session_tokens,
        model=stored.run.model,
        run_id=info.run_id,
        usage=_usage(stored.usage.prompt_tokens, stored.usage.completion_tokens),
        tool_calls=_tool_calls(stored.tool_outcomes),
        citations=citations_public(stored.citations),
        status="cancelled" if stored.run.status == "cancelled" else "completed",
    )


@router.post(
    "/chat/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **ERRORS},
)
async def chat_stream(
    body: ChatRequest, request: Request, work: WorkDep, idempotency_key: IdempotencyKey = None
) -> StreamingResponse:
    """Send a message and stream the reply as Server-Sent Events."""
    services, settings = work.services, work.settings
    info, _ = await _start(body, request, work, idempotency_key)
    if await services.runs.available(info.run_id):
        events = services.runs.follow(info.run_id, idle_timeout=settings.sse_ping_seconds)
    else:
        events = iterate_events(replay_events(await load_run(services.store, info.run_id)))
    return event_stream(events, retry_ms=settings.sse_retry_ms, headers=_run_headers(info))


async def _start(
    body: ChatRequest, request: Request, work: Work, idempotency_key: str | None
) -> tuple[RunInfo, asyncio.Future[RunOutcome] | None]:
    """The run answering this request, and its end when this process runs it."""
    services, owner = work.services, work.owner
    _check_limits(body, work.settings)
    fingerprint = ""
    if idempotency_key:
        fingerprint = _fingerprint(request.url.path, body)
        record = await services.store.get_idempotency(
            owner, idempotency_key, fingerprint=fingerprint
        )
        if record is not None:
            return await _existing(services, record.run_id)
    finishers = await reserve_capacity(request, services, body.message, body.max_tokens)
    try:
        started = await services.runs.start(
            TurnRequest(
                message=body.message,
                owner=owner,
                session_id=SessionId(body.session_id) if body.session_id is not None else None,
                agent=body.agent,
                temperature=body.temperature,
                max_tokens=body.max_tokens,
                request_id=request_id_of(request),
                finishers=finishers,
            )
        )
    except BaseException:
        for finish in finishers:
            await finish(Usage())
        raise
    if idempotency_key:
        record = await services.store.put_idempotency(
            owner, idempotency_key, fingerprint, started.info.run_id
        )
        if record.run_id != started.info.run_id:  # a concurrent retry won the race
            services.runs.cancel(started.info.run_id)
            return await _existing(services, record.run_id)
    return started.info, started.ended


async def _existing(
    services: ServerServices, run_id: RunId
) -> tuple[RunInfo, asyncio.Future[RunOutcome] | None]:
    run = await services.store.get_run(run_id)
    session = await services.store.get_session(run.session_id)
    info = RunInfo(run.id, run.session_id, session.agent, run.model)
    return info, services.runs.outcome(run_id) if services.runs.is_live(run_id) else None


def _check_limits(body: ChatRequest, settings: Settings) -> None:
    if len(body.message) > settings.max_message_chars:
        raise InvalidRequestError(
            f"Invalid request: message is longer than {settings.max_message_chars} characters"
        )
    if body.max_tokens is not None and body.max_tokens > settings.max_reply_tokens:
        raise InvalidRequestError(
            f"Invalid request: max_tokens is above this server's limit of "
            f"{settings.max_reply_tokens}"
        )


def _fingerprint(path: str, body: ChatRequest) -> str:
    canonical = json.dumps([path, body.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _response(outcome: RunOutcome) -> ChatResponse:
    return ChatResponse(
        response=outcome.text,
        session_id=outcome.info.session_id,
        tokens_used=outcome.session_tokens,
        model=outcome.info.model,
        run_id=outcome.info.run_id,
        usage=_usage(outcome.usage.prompt_tokens, outcome.usage.completion_tokens),
        tool_calls=_tool_calls(outcome.tool_outcomes),
        citations=citations_public(outcome.citations),
        status="cancelled" if outcome.status == "cancelled" else "completed",
    )


def _usage(prompt: int, completion: int) -> UsagePublic:
    return UsagePublic(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def _tool_calls(outcomes: tuple[ToolOutcome, ...]) -> list[ToolCallPublic]:
    return [
        ToolCallPublic(
            id=o.call.id,
            name=o.call.name,
            arguments=o.call.arguments,
            result=None if o.is_error else o.content,
            error=o.content if o.is_error else None,
        )
        for o in outcomes
    ]


def citations_public(citations: tuple[Citation, ...]) -> list[CitationPublic]:
    return [
        CitationPublic(n=c.n, source=c.source, heading=c.heading, snippet=c.snippet)
        for c in citations
    ]


def _run_headers(info: RunInfo) -> dict[str, str]:
    return {"X-Session-ID": info.session_id, "X-Run-ID": info.run_id}
