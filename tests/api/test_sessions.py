"""Sessions, health, readiness, agents, docs and CORS."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from agenthost.testing import FunctionModel, Reply

from .conftest import running_app


async def test_create_read_list_and_delete_a_session(client: httpx.AsyncClient) -> None:
    created = await client.post("/sessions")
    assert created.status_code == 201
    session_id = created.json()["session_id"]
    session = (await client.get(f"/sessions/{session_id}")).json()
    assert session["message_count"] == 0
    assert session["tokens_used"] == 0
    assert session["agent"] == "assistant"
    assert session["messages"] == []
    assert session["has_more"] is False

    listed = (await client.get("/sessions")).json()
    assert [s["session_id"] for s in listed["sessions"]] == [session_id]

    deleted = await client.delete(f"/sessions/{session_id}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    missing = await client.get(f"/sessions/{session_id}")
    assert missing.status_code == 404
    assert missing.json()["error"] == "Session not found"
    assert (await client.delete(f"/sessions/{session_id}")).status_code == 404


async def test_create_session_with_title_metadata_and_agent(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/sessions", json={"title": "Trip", "metadata": {"user": "ada"}, "agent": "assistant"}
    )
    session = (await client.get(f"/sessions/{created.json()['session_id']}")).json()
    assert session["title"] == "Trip"
    assert session["metadata"] == {"user": "ada"}
    bad = await client.post("/sessions", json={"agent": "ghost"})
    assert bad.status_code == 404


async def test_chat_titles_new_sessions_from_the_first_message(client: httpx.AsyncClient) -> None:
    reply = await client.post("/chat", json={"message": "  Plan a   trip\nto Rome  "})
    session = (await client.get(f"/sessions/{reply.json()['session_id']}")).json()
    assert session["title"] == "Plan a trip to Rome"


async def test_sessions_are_listed_newest_first_with_cursor_pages(
    client: httpx.AsyncClient,
) -> None:
    made = [(await client.post("/sessions")).json()["session_id"] for _ in range(5)]
    first = (await client.get("/sessions", params={"limit": 2})).json()
    second = (
        await client.get("/sessions", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    third = (
        await client.get("/sessions", params={"limit": 2, "cursor": second["next_cursor"]})
    ).json()
    listed = [s["session_id"] for page in (first, second, third) for s in page["sessions"]]
    assert listed == list(reversed(made))
    assert third["next_cursor"] is None
    assert (await client.get("/sessions", params={"limit": 0})).status_code == 422
    assert (await client.get("/sessions", params={"limit": 101})).status_code == 422


async def test_history_pages_back_with_before(client: httpx.AsyncClient) -> None:
    session_id = (await client.post("/sessions")).json()["session_id"]
    for n in range(3):
        await client.post("/chat", json={"message": f"m{n}", "session_id": session_id})
    newest = (await client.get(f"/sessions/{session_id}", params={"limit": 4})).json()
    assert [m["content"] for m in newest["messages"]] == [
        "m1",
        "You said: m1",
        "m2",
        "You said: m2",
    ]
    assert newest["has_more"] is True
    older = (
        await client.get(
            f"/sessions/{session_id}",
            params={"limit": 4, "before": newest["messages"][0]["id"]},
        )
    ).json()
    assert [m["content"] for m in older["messages"]] == ["m0", "You said: m0"]
    assert older["has_more"] is False
    message = newest["messages"][1]
    assert message["role"] == "assistant"
    assert message["run_id"] == newest["messages"][0]["run_id"]
    assert (await client.get(f"/sessions/{session_id}", params={"limit": 501})).status_code == 422


async def test_deleting_a_session_stops_its_running_reply() -> None:
    model = FunctionModel(lambda _: Reply("x " * 500, delay=0.01))
    async with running_app(model) as (app, client):
        session_id = (await client.post("/sessions")).json()["session_id"]
        reply = asyncio.create_task(
            client.post("/chat", json={"message": "go", "session_id": session_id})
        )
        while not model.requests:
            await asyncio.sleep(0.005)
        assert (await client.delete(f"/sessions/{session_id}")).status_code == 204
        await reply
        assert app.state.services.runs.active == 0
        assert (await client.get(f"/sessions/{session_id}")).status_code == 404


async def test_health_is_the_seed_shape(client: httpx.AsyncClient) -> None:
    await client.post("/sessions")
    body = (await client.get("/health")).json()
    assert body == {"status": "healthy", "sessions_active": 1, "version": body["version"]}


async def test_ready_checks_store_and_model(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"server": "ok", "store": "ok", "model": "ok"},
    }


async def test_ready_is_503_while_stopping() -> None:
    async with running_app() as (app, client):
        app.state.stopping = True
        response = await client.get("/ready")
        refused = [
            await client.post("/chat", json={"message": "hi"}),
            await client.post("/chat/stream", json={"message": "hi"}),
            await client.post("/sessions", json={}),
            await client.post(
                "/v1/chat/completions",
                json={"model": "assistant", "messages": [{"role": "user", "content": "hi"}]},
            ),
        ]
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["checks"]["server"] == "stopping"
    assert [r.status_code for r in refused] == [503] * 4
    assert {r.headers["retry-after"] for r in refused} == {"5"}


async def test_agents_lists_agents_with_their_tools(client: httpx.AsyncClient) -> None:
    body = (await client.get("/agents")).json()
    assert body["model"] == "test"
    assistant = next(a for a in body["agents"] if a["name"] == "assistant")
    assert assistant["default"] is True
    assert [t["name"] for t in assistant["tools"]] == ["calculator", "current_time"]
    assert assistant["tools"][0]["parameters"]["required"] == ["expression"]


async def test_docs_and_openapi_schema_are_served(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    for path in (
        "/chat",
        "/chat/stream",
        "/sessions",
        "/sessions/{session_id}",
        "/health",
        "/ready",
        "/runs/{run_id}/events",
        "/runs/{run_id}/cancel",
        "/agents",
        "/v1/chat/completions",
        "/v1/models",
    ):
        assert path in schema["paths"], path
    assert (await client.get("/docs")).status_code == 200


async def test_cors_allows_only_the_configured_origins() -> None:
    async with running_app(cors_origins=["https://app.example"]) as (_, client):
        preflight = await client.options(
            "/chat",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,authorization",
            },
        )
        denied = await client.options(
            "/chat",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        simple = await client.get("/health", headers={"Origin": "https://app.example"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert denied.status_code == 400
    assert "access-control-allow-origin" not in denied.headers
    assert "X-Request-ID" in simple.headers["access-control-expose-headers"]


async def test_wildcard_cors_never_allows_credentials() -> None:
    async with running_app(cors_origins=["*"]) as (_, client):
        response = await client.get("/health", headers={"Origin": "https://any.example"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


async def test_random_ids_are_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/sessions/{uuid.uuid4()}")
    assert response.status_code == 404


async def test_a_session_keeps_answering_with_its_own_agent() -> None:
    model = FunctionModel(lambda request: request.messages[0].content)
    async with running_app(model, agents=["tests.support.agents:second"]) as (_, client):
        created = await client.post("/sessions", json={"agent": "second"})
        session_id = created.json()["session_id"]
        reply = await client.post("/chat", json={"message": "hi", "session_id": session_id})
        other = await client.post(
            "/chat", json={"message": "hi", "session_id": session_id, "agent": "assistant"}
        )
    assert reply.json()["response"] == "Second agent."
    assert other.json()["response"].startswith("You are a helpful")
