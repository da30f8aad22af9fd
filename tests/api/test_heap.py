"""The serving process settles its heap once started; an embedded app leaves it alone."""

from __future__ import annotations

import gc

import pytest

from agenthost.server.app import create_app_from_environment
from agenthost.server.heap import YOUNG_THRESHOLD

from .conftest import running_app, served_app


async def test_the_served_app_freezes_start_up_objects_once_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTHOST_MODEL", "test")
    monkeypatch.setenv("AGENTHOST_DATABASE_URL", "memory://")
    threshold = gc.get_threshold()
    app = create_app_from_environment()
    try:
        assert gc.get_freeze_count() == 0
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 10_000
            assert gc.get_threshold() == (YOUNG_THRESHOLD, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


async def test_an_embedded_app_leaves_the_collector_alone() -> None:
    threshold = gc.get_threshold()
    async with running_app() as (_, client):
        assert (await client.get("/health")).status_code == 200
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == threshold


async def test_a_finished_request_leaves_no_reference_cycle_behind() -> None:
    """Each request's objects are freed as it ends, not by a later collector pass."""
    async with served_app() as (_, client):
        for _ in range(3):  # warm: first-use caches are not per-request garbage
            assert (await client.post("/chat/stream", json={"message": "hi"})).status_code == 200
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(10):
                streamed = await client.post("/chat/stream", json={"message": "hi"})
                assert streamed.status_code == 200
                assert (await client.post("/chat", json={"message": "hi"})).status_code == 200
                assert (await client.get("/health")).status_code == 200
            gc.collect()
            left = sorted({type(o).__qualname__ for o in gc.garbage if _server_side(o)})
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    assert left == []


def _server_side(obj: object) -> bool:
    """An object of the server's handling (uvicorn's, Starlette's or agenthost's)."""
    module = getattr(type(obj), "__module__", "") or ""
    return module.startswith(("uvicorn", "starlette", "fastapi", "agenthost"))
