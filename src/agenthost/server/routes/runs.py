"""Runs: follow or resume a run's events (``Last-Event-ID``), and cancel a run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from agenthost.errors import RunNotFoundError
from agenthost.runs.cancelling import cancel_anywhere
from agenthost.runs.replay import load_run, replay_events
from agenthost.server.deps import OwnerDep, ServicesDep, SettingsDep
from agenthost.server.schemas import CancelResponse, ErrorResponse
from agenthost.server.sse import event_stream, iterate_events
from agenthost.stores.base import RunId

router = APIRouter(tags=["runs"])
NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": ErrorResponse}}


@router.get(
    "/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **NOT_FOUND},
)
async def run_events(
    run_id: str,
    services: ServicesDep,
    settings: SettingsDep,
    owner: OwnerDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
    after: Annotated[int | None, Query(ge=0, description="Same as Last-Event-ID.")] = None,
) -> StreamingResponse:
    """The run's events after ``Last-Event-ID`` (all of them without it), then live ones."""
    await services.runs.check_owner(RunId(run_id), owner)
    start = after if after is not None else _last_seen(last_event_id)
    if await services.runs.available(RunId(run_id)):
        events = services.runs.follow(
            RunId(run_id), after=start, idle_timeout=settings.sse_ping_seconds
        )
    else:
        stored = await load_run(services.store, RunId(run_id))
        if stored.run.status == "running" or start > 0:
            raise RunNotFoundError(
                "This run's events are not available here any more: read the reply "
                "from the session, or resume without Last-Event-ID once it has finished"
            )
        events = iterate_events(replay_events(stored))
    return event_stream(events, retry_ms=settings.sse_retry_ms)


@router.post("/runs/{run_id}/cancel", response_model=CancelResponse, responses=NOT_FOUND)
async def cancel_run(run_id: str, services: ServicesDep, owner: OwnerDep) -> CancelResponse:
    """Stop a running reply; what it generated so far is kept in the session."""
    await services.runs.check_owner(RunId(run_id), owner)
    cancelled = await cancel_anywhere(
        RunId(run_id),
        runs=services.runs,
        store=services.store,
        bus=services.cancel_bus,
        clock=services.core.clock,
    )
    return CancelResponse(run_id=run_id, cancelled=cancelled)


def _last_seen(header: str | None) -> int:
    if header is None or not header.strip().isdigit():
        return 0
    return int(header.strip())
