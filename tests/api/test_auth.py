"""API keys: 401 for missing, malformed, unknown and revoked keys; 404 across owners."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from fastapi import FastAPI

from agenthost.auth.keys import generate_key
from agenthost.stores.base import ApiKeyId
from agenthost.testing import FunctionModel, Reply
from tests.support.sse import parse

from .conftest import running_app, served_app


async def make_key(app: FastAPI, name: str, *, admin: bool = False, **limits: int) -> str:
    new = generate_key()
    await app.state.services.store.create_api_key(
        name=name, prefix=new.prefix, key_hash=new.key_hash, admin=admin, **limits
    )
    return new.secret


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_requests_without_a_valid_key_are_401() -> None:
    async with running_app(auth="keys", auth_cache_seconds=0) as (app, client):
        key = await make_key(app, "alice")
        missing = await client.get("/sessions")
        malformed = await client.get("/sessions", headers=bearer("not-a-key"))
        wrong_scheme = await client.get("/sessions", headers={"Authorization": f"Basic {key}"})
        unknown = await client.get("/sessions", headers=bearer(generate_key().secret))
        ok_bearer = await client.get("/sessions", headers=bearer(key))
        ok_header = await client.get("/sessions", headers={"X-API-Key": key})
        (record,) = await app.state.services.store.list_api_keys()
        await app.state.services.store.revoke_api_key(ApiKeyId(record.id))
        revoked = await client.get("/sessions", headers=bearer(key))
        health = await client.get("/health")
        ready = await client.get("/ready")
    assert missing.status_code == 401
    assert missing.json()["error"].startswith("An API key is required")
    assert missing.headers["www-authenticate"] == 'Bearer realm="agenthost"'
    for response in (malformed, wrong_scheme, unknown, revoked):
        assert response.status_code == 401
        assert response.json()["error"] == "Invalid API key"
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert key not in response.text
    assert ok_bearer.status_code == ok_header.status_code == 200
    assert health.status_code == ready.status_code == 200


async def test_a_revoked_key_stops_working_within_the_cache_time() -> None:
    async with running_app(auth="keys", auth_cache_seconds=0.2) as (app, client):
        key = await make_key(app, "alice")
        assert (await client.get("/sessions", headers=bearer(key))).status_code == 200
        (record,) = await app.state.services.store.list_api_keys()
        await app.state.services.store.revoke_api_key(ApiKeyId(record.id))
        await asyncio.sleep(0.25)
        assert (await client.get("/sessions", headers=bearer(key))).status_code == 401


async def test_every_session_and_run_route_is_404_for_another_key() -> None:
    model = FunctionModel(lambda _: Reply("slow " * 200, delay=0.01))
    async with running_app(model, auth="keys") as (app, client):
        alice = bearer(await make_key(app, "alice"))
        bob = bearer(await make_key(app, "bob"))
        session_id = (await client.post("/sessions", headers=alice)).json()["session_id"]
        stream = await client.post(
            "/chat/stream", json={"message": "hi", "session_id": session_id}, headers=alice
        )
        run_id = json.loads(parse(stream.text).events[1].data)["run_id"]
        with_session = {"message": "mine now", "session_id": session_id}
        openai_body = {
            "model": "assistant",
            "messages": [{"role": "user", "content": "hi"}],
            "session_id": session_id,
        }
        attempts = {
            "get session": await client.get(f"/sessions/{session_id}", headers=bob),
            "delete session": await client.delete(f"/sessions/{session_id}", headers=bob),
            "chat": await client.post("/chat", json=with_session, headers=bob),
            "chat stream": await client.post("/chat/stream", json=with_session, headers=bob),
            "run events": await client.get(f"/runs/{run_id}/events", headers=bob),
            "resume": await client.get(
                f"/runs/{run_id}/events", headers={**bob, "Last-Event-ID": "2"}
            ),
            "cancel": await client.post(f"/runs/{run_id}/cancel", headers=bob),
            "openai session": await client.post(
                "/v1/chat/completions", json=openai_body, headers=bob
            ),
        }
        bobs_list = (await client.get("/sessions", headers=bob)).json()["sessions"]
        alices_view = await client.get(f"/sessions/{session_id}", headers=alice)
    for route, response in attempts.items():
        assert response.status_code == 404, route
    assert bobs_list == []
    assert alices_view.status_code == 200
    assert alices_view.json()["message_count"] == 2  # bob's attempts changed nothing


async def test_only_admin_keys_list_every_session() -> None:
    async with running_app(auth="keys") as (app, client):
        alice = bearer(await make_key(app, "alice"))
        admin = bearer(await make_key(app, "ops", admin=True))
        mine = (await client.post("/sessions", headers=alice)).json()["session_id"]
        refused = await client.get("/sessions", params={"all": "true"}, headers=alice)
        everything = await client.get("/sessions", params={"all": "true"}, headers=admin)
        own = await client.get("/sessions", headers=admin)
    assert refused.status_code == 403
    assert refused.json()["error"] == "Listing every session needs an admin key"
    assert [s["session_id"] for s in everything.json()["sessions"]] == [mine]
    assert own.json()["sessions"] == []


@pytest.mark.parametrize("path", ["/chat", "/v1/chat/completions", "/agents", "/v1/models"])
async def test_api_routes_need_a_key(path: str) -> None:
    async with running_app(auth="keys") as (_, client):
        response = (
            await client.post(path, json={"message": "hi"})
            if path.endswith(("chat", "completions"))
            else await client.get(path)
        )
    assert response.status_code == 401
    if path.startswith("/v1/"):
        assert response.json()["error"]["type"] == "authentication_error"


async def test_the_openai_sdk_authenticates_with_its_api_key() -> None:
    async with served_app(auth="keys") as (app, client):
        key = await make_key(app, "sdk")
        base = str(client.base_url).rstrip("/") + "/v1"
        async with openai.AsyncOpenAI(base_url=base, api_key=key, max_retries=0) as api:
            models = await api.models.list()
        async with openai.AsyncOpenAI(base_url=base, api_key="wrong", max_retries=0) as api:
            with pytest.raises(openai.AuthenticationError):
                await api.models.list()
    assert [m.id for m in models.data] == ["assistant", "faq", "research"]
