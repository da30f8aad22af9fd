"""Fixtures for API tests: the real app on a memory store, through ASGI or a real socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from agenthost.llm.base import ChatModel
from agenthost.server.app import create_app
from agenthost.settings import Settings
from agenthost.testing import TestModel

AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"model": "test", "database_url": "memory://"}
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running_app(
    chat_model: ChatModel | None = None, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan, and an ASGI client (responses are read whole)."""
    app = create_app(make_settings(**overrides), model=chat_model or TestModel())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agenthost") as client:
            yield app, client


@contextlib.asynccontextmanager
async def served_app(
    chat_model: ChatModel | None = None, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app served by uvicorn on a loopback port, for real streaming and disconnects."""
    app = create_app(make_settings(**overrides), model=chat_model or TestModel())
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, loop="asyncio", lifespan="on", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield app, client
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with running_app() as (_, client):
        yield client
