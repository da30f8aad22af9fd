"""Sessions: create, read with history (paged), list the caller's, delete.

A session that does not exist and a session of another key get the same 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from agenthost.server.auth import PrincipalDep, listing_owner
from agenthost.server.deps import AcceptingWork, OwnerDep, ServicesDep
from agenthost.server.schemas import (
    CitationPublic,
    ErrorResponse,
    MessagePublic,
    SessionCreated,
    SessionCreateRequest,
    SessionDetail,
    SessionList,
    SessionPublic,
    ToolCallPublic,
)
from agenthost.stores.base import MessageId, SessionId, SessionRecord, StoredMessage

router = APIRouter(tags=["sessions"])
NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
}


@router.post(
    "/sessions",
    status_code=201,
    response_model=SessionCreated,
    responses=NOT_FOUND,
    dependencies=[AcceptingWork],
)
async def create_session(
    services: ServicesDep, owner: OwnerDep, body: SessionCreateRequest | None = None
) -> SessionCreated:
    """Create an empty session (for the default agent unless ``agent`` is given)."""
    body = body or SessionCreateRequest()
    agent = services.core.agents.get(body.agent)
    record = await services.store.create_session(
        owner=owner, agent=agent.name, title=body.title, metadata=body.metadata
    )
    return SessionCreated(session_id=record.id)


@router.get("/sessions", response_model=SessionList)
async def list_sessions(
    services: ServicesDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    everyone: Annotated[
        bool, Query(alias="all", description="Every key's sessions (admin keys only).")
    ] = False,
) -> SessionList:
    """The caller's sessions, newest first; pass ``next_cursor`` back for the next page."""
    page = await services.store.list_sessions(
        owner=listing_owner(principal, everyone), limit=limit, cursor=cursor
    )
    return SessionList(
        sessions=[_public(record) for record in page.sessions], next_cursor=page.next_cursor
    )


@router.get("/sessions/{session_id}", response_model=SessionDetail, responses=NOT_FOUND)
async def get_session(
    session_id: str,
    services: ServicesDep,
    owner: OwnerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(max_length=64)] = None,
) -> SessionDetail:
    """The session and its most recent messages (``before`` pages back in time)."""
    record = await services.store.get_session(SessionId(session_id), owner=owner)
    page = await services.store.read_page(
        record.id, limit=limit, before=MessageId(before) if before else None
    )
    return SessionDetail(
        **_public(record).model_dump(),
        messages=[_message(m) for m in page],
        has_more=bool(page) and page[0].seq > 1,
    )


@router.delete(
    "/sessions/{session_id}", status_code=204, response_class=Response, responses=NOT_FOUND
)
async def delete_session(session_id: str, services: ServicesDep, owner: OwnerDep) -> Response:
    """Delete the session and its whole history; a reply still running is stopped first."""
    record = await services.store.get_session(SessionId(session_id), owner=owner)
    await services.runs.stop_session(record.id)
    await services.store.delete_session(record.id, owner=owner)
    return Response(status_code=204)


def _public(record: SessionRecord) -> SessionPublic:
    return SessionPublic(
        session_id=record.id,
        message_count=record.message_count,
        tokens_used=record.total_tokens,
        agent=record.agent,
        title=record.title,
        created_at=record.created_at,
        updated_at=record.updated_at,
        metadata=dict(record.metadata),
    )


def _message(stored: StoredMessage) -> MessagePublic:
    message = stored.message
    return MessagePublic(
        id=stored.id,
        role=message.role,
        content=message.content,
        tool_calls=[
            ToolCallPublic(id=c.id, name=c.name, arguments=c.arguments) for c in message.tool_calls
        ],
        tool_call_id=message.tool_call_id,
        citations=[
            CitationPublic(n=c.n, source=c.source, heading=c.heading, snippet=c.snippet)
            for c in message.citations
        ],
        created_at=stored.created_at,
        run_id=stored.run_id,
    )
