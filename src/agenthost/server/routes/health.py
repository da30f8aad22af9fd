"""Liveness (``/health``, cheap) and readiness (``/ready``: store and model, not stopping)."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from agenthost import __version__
from agenthost.errors import AgentHostError
from agenthost.server.deps import ServicesDep
from agenthost.server.schemas import HealthResponse, ReadyResponse
from agenthost.services import ServerServices

router = APIRouter(tags=["health"])

SESSION_COUNT_TTL = 5.0
READY_TIMEOUT = 2.0


class SessionCounter:
    """``sessions_active`` for /health, counted at most every few seconds."""

    def __init__(self) -> None:
        self._value = 0
        self._at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, services: ServerServices) -> int:
        now = services.core.clock.monotonic()
        if now - self._at < SESSION_COUNT_TTL:
            return self._value
        async with self._lock:
            if now - self._at >= SESSION_COUNT_TTL:
                # Liveness must not depend on the store: /ready reports it.
                with contextlib.suppress(AgentHostError):
                    self._value = await services.store.count_sessions()
                self._at = now
        return self._value


@router.get("/health", response_model=HealthResponse)
async def health(request: Request, services: ServicesDep) -> HealthResponse:
    """The process is alive. Cheap enough for a load balancer to call every second."""
    counter: SessionCounter = request.app.state.session_counter
    return HealthResponse(sessions_active=await counter.get(services), version=__version__)


@router.get("/ready", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}})
async def ready(request: Request) -> JSONResponse:
    """Ready for traffic: started, not stopping, store reachable, model loaded."""
    checks: dict[str, str] = {}
    services = getattr(request.app.state, "services", None)
    stopping = getattr(request.app.state, "stopping", False)
    checks["server"] = "stopping" if stopping else ("ok" if services else "starting")
    if services is not None:
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await services.store.ping()
            checks["store"] = "ok"
        except (AgentHostError, TimeoutError):
            checks["store"] = "unavailable"
        checks["model"] = "ok" if request.app.state.model_ready else "loading"
    ok = all(value == "ok" for value in checks.values())
    body = ReadyResponse(status="ready" if ok else "not ready", checks=checks)
    headers = {} if ok else {"Retry-After": "5"}
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503, headers=headers)
