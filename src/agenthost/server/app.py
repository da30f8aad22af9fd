"""``create_app(settings)``: the FastAPI application, built on demand, never at import.

The lifespan opens the services (store, model, runs) before the first request
and, on shutdown, refuses new work at once, gives running replies the grace
period, interrupts the rest (their partial replies are saved), and closes
everything it opened.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.middleware.cors import CORSMiddleware

from agenthost import __version__
from agenthost.clock import Clock
from agenthost.llm.base import ChatModel
from agenthost.observability.logging import ensure_logging
from agenthost.server.access import AccessMiddleware, AgentHostAPI
from agenthost.server.auth import authorize
from agenthost.server.errors import install_error_handlers
from agenthost.server.heap import settle_heap as settle_start_up_heap
from agenthost.server.lanes import Lane, ReplyLanes
from agenthost.server.lifecycle import on_stop_signal
from agenthost.server.middleware import BodyLimitMiddleware
from agenthost.server.routes import agents, chat, health, metrics, openai, page, runs, sessions
from agenthost.services import ServerServices, open_server_services
from agenthost.settings import Settings

logger = logging.getLogger(__name__)

EXPOSED_HEADERS = [
    "X-Request-ID",
    "X-Session-ID",
    "X-Run-ID",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-Trace-ID",
]

API_DEPENDENCIES = (authorize,)
"""What every API route (not health, metrics, the page or the docs) runs first."""


def create_app(
    settings: Settings,
    *,
    model: ChatModel | None = None,
    clock: Clock | None = None,
    settle_heap: bool = False,
) -> FastAPI:
    """The app; ``model`` and ``clock`` replace the configured ones (tests, embedding).

    ``settle_heap`` tunes the process's garbage collector once started (``heap.py``):
    for a process that only serves this app.
    """
    ensure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.stopping = False
        app.state.model_ready = False
        async with open_server_services(settings, model=model, clock=clock) as services:
            await services.core.model.start()
            app.state.model_ready = True
            app.state.services = services
            app.state.telemetry = services.telemetry
            if settle_heap:
                settle_start_up_heap()
            _announce(services, settings)
            recovery = asyncio.create_task(services.runs.recover_crashed_runs())
            stopping: list[asyncio.Task[None]] = []

            def stop() -> None:
                if not stopping:
                    app.state.stopping = True
                    logger.info("stopping: refusing new work, finishing running replies")
                    grace = settings.shutdown_grace_seconds
                    stopping.append(asyncio.create_task(services.runs.shutdown(grace)))

            try:
                with on_stop_signal(stop):
                    yield
            finally:
                stop()
                recovery.cancel()
                await stopping[0]
                app.state.services = None

    app = AgentHostAPI(
        title="agenthost",
        version=__version__,
        summary="An AI agent as a web service: chat, streaming, sessions, OpenAI-compatible.",
        lifespan=lifespan,
        # agenthost records its own request spans, metrics and log lines (``server.access``);
        # FastAPI's would double them under a global OpenTelemetry setup, and its check
        # for one costs three provider lookups per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.services = None
    app.state.telemetry = None
    app.state.stopping = False
    app.state.model_ready = False
    app.state.session_counter = health.SessionCounter()
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    for module in (chat, sessions, runs, agents, openai):
        app.include_router(module.router, dependencies=[Depends(d) for d in API_DEPENDENCIES])

    page.install_page(app)

    app.add_middleware(ReplyLanes, lanes=reply_lanes())
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials="*" not in settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "X-API-Key",
                "Content-Type",
                "Idempotency-Key",
                "Last-Event-ID",
                "X-Request-ID",
                "X-Session-ID",
            ],
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )
    app.add_middleware(AccessMiddleware)
    return app


def reply_lanes() -> list[Lane]:
    """The routes that start replies, answered without FastAPI's per-request layers."""
    return [
        Lane(path, endpoint, dependencies=API_DEPENDENCIES)
        for path, endpoint in (
            ("/chat", chat.chat),
            ("/chat/stream", chat.chat_stream),
            ("/v1/chat/completions", openai.chat_completions),
        )
    ]


def _announce(services: ServerServices, settings: Settings) -> None:
    logger.info(
        "agenthost %s ready: model %s, agents %s, store %s, auth %s",
        __version__,
        services.core.model.model_id,
        ", ".join(services.core.agents.names),
        services.store.backend,
        settings.auth,
    )
    if settings.workers > 1 and not settings.redis_url:
        logger.warning(
            "%d workers without AGENTHOST_REDIS_URL: rate and stream limits hold per worker "
            "(each worker allows the full limit), and a stream can be resumed or cancelled "
            "only through the worker that runs it",
            settings.workers,
        )


def create_app_from_environment() -> FastAPI:
    """For ``uvicorn --factory``: the app configured from ``AGENTHOST_*`` and ``.env``.

    This is the serving process's own app, so it also settles the process's heap.
    """
    return create_app(Settings(), settle_heap=True)
