"""Per-key limits in one process: requests, tokens and streams; steps and wall time per turn."""

from __future__ import annotations

import asyncio
import time

from agenthost.testing import FunctionModel, Reply, call_tool
from tests.support.metrics import Scrape

from .conftest import running_app
from .test_auth import bearer, make_key


async def test_requests_per_minute_and_their_headers() -> None:
    async with running_app(auth="keys") as (app, client):
        key = bearer(await make_key(app, "small", rpm=3))
        other = bearer(await make_key(app, "other", rpm=3))
        answers = [await client.get("/sessions", headers=key) for _ in range(4)]
        unaffected = await client.get("/sessions", headers=other)
        scrape = Scrape((await client.get("/metrics")).text)
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["x-ratelimit-limit"] == "3"
    assert answers[0].headers["ratelimit-limit"] == "3"
    assert int(answers[0].headers["x-ratelimit-reset"]) > time.time()
    limited = answers[3]
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.json()["error"].startswith("Rate limit reached: 3 requests per minute")
    assert unaffected.status_code == 200
    assert scrape.value("agenthost_rate_limited_total", limit="requests") == 1


async def test_without_auth_limits_count_per_client_address() -> None:
    async with running_app(rate_limit_rpm=2) as (_, client):
        statuses = [(await client.get("/agents")).status_code for _ in range(3)]
        health = await client.get("/health")
    assert statuses == [200, 200, 429]
    assert health.status_code == 200  # health checks are never limited


async def test_tokens_per_minute_refuse_before_the_model_is_called() -> None:
    model = FunctionModel(lambda _: "ok")
    async with running_app(model, auth="keys") as (app, client):
        key = bearer(await make_key(app, "frugal", tpm=300))
        first = await client.post("/chat", json={"message": "hi", "max_tokens": 100}, headers=key)
        second = await client.post("/chat", json={"message": "hi", "max_tokens": 250}, headers=key)
    assert first.status_code == 200
    assert second.status_code == 429
    assert "Token limit reached: 300 model tokens per minute" in second.json()["error"]
    assert len(model.requests) == 1


async def test_concurrent_streams_are_limited_and_freed_when_a_reply_ends() -> None:
    model = FunctionModel(lambda _: Reply("word " * 30, delay=0.01))
    async with running_app(model, auth="keys") as (app, client):
        key = bearer(await make_key(app, "one-at-a-time", max_streams=1))
        first = asyncio.create_task(client.post("/chat", json={"message": "a"}, headers=key))
        while not model.requests:
            await asyncio.sleep(0.005)
        second = await client.post("/chat", json={"message": "b"}, headers=key)
        assert (await first).status_code == 200
        third = await client.post("/chat", json={"message": "c"}, headers=key)
    assert second.status_code == 429
    assert second.json()["error"].startswith("Too many replies running at once: the limit is 1")
    assert third.status_code == 200


async def test_a_refused_request_gives_its_stream_slot_back() -> None:
    async with running_app(auth="keys") as (app, client):
        key = bearer(await make_key(app, "k", max_streams=1))
        missing = "00000000-0000-4000-8000-000000000000"
        for _ in range(3):
            response = await client.post(
                "/chat", json={"message": "x", "session_id": missing}, headers=key
            )
            assert response.status_code == 404
        assert (await client.post("/chat", json={"message": "x"}, headers=key)).status_code == 200


async def test_openai_compatible_turns_give_their_stream_slot_back() -> None:
    async with running_app(auth="keys") as (app, client):
        key = bearer(await make_key(app, "k", max_streams=1))
        statuses = []
        for stream in (False, True, False, True):
            body = {"model": "assistant", "messages": [{"role": "user", "content": "x"}]}
            response = await client.post(
                "/v1/chat/completions", json={**body, "stream": stream}, headers=key
            )
            statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 200]


async def test_tool_steps_per_turn_are_capped_by_the_server() -> None:
    model = FunctionModel(
        lambda _: Reply(tool_calls=(call_tool("calculator", {"expression": "1+1"}),))
    )
    async with running_app(model, max_tool_steps=2) as (_, client):
        response = await client.post("/chat", json={"message": "loop"})
    assert response.status_code == 200
    assert len(model.requests) == 2
    assert response.json()["response"].startswith("I stopped after 2 steps")


async def test_a_turn_over_its_wall_time_fails_and_keeps_what_was_written() -> None:
    model = FunctionModel(lambda _: Reply(chunks=tuple(f"w{n} " for n in range(100)), delay=0.02))
    async with running_app(model, max_turn_seconds=0.3) as (_, client):
        started = time.monotonic()
        response = await client.post("/chat", json={"message": "long"})
        elapsed = time.monotonic() - started
        session_id = (await client.get("/sessions")).json()["sessions"][0]["session_id"]
        history = (await client.get(f"/sessions/{session_id}")).json()["messages"]
    assert response.status_code == 504
    assert "took longer than 0.3 s" in response.json()["error"]
    assert elapsed < 2
    assert history[-1]["role"] == "assistant"
    assert history[-1]["content"].startswith("w0 w1")
