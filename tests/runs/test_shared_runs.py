"""Run events and cancel requests shared through the real Redis, as two processes see them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from agenthost.errors import RunNotFoundError
from agenthost.runs.cancel_bus import RedisCancelBus
from agenthost.runs.events import RunEvent
from agenthost.runs.redis_log import KEY_PREFIX, RedisRunEventLog
from tests.support.services import redis_base, require_service


@pytest.fixture
async def logs() -> AsyncIterator[tuple[RedisRunEventLog, RedisRunEventLog]]:
    require_service("Redis", redis_base())
    here = RedisRunEventLog(redis_base(), retention=60, max_age=600)
    there = RedisRunEventLog(redis_base(), retention=60, max_age=600)
    yield here, there
    await here.aclose()
    await there.aclose()


def token(seq: int, text: str) -> RunEvent:
    return RunEvent(seq, "token", text)


async def test_another_process_resumes_a_run_and_follows_it_live(
    logs: tuple[RedisRunEventLog, RedisRunEventLog],
) -> None:
    here, there = logs
    run_id = str(uuid.uuid4())
    here.open(run_id)
    for seq, text in enumerate(["a", " b\n", "data: c"], start=1):
        here.append(run_id, token(seq, text))
    await asyncio.sleep(0.05)  # let the flusher mirror them
    assert not there.knows(run_id)
    assert await there.locate(run_id)

    seen: list[RunEvent] = []

    async def follow() -> None:
        async for event in there.follow(run_id, after=1, idle_timeout=0.1):
            if event is not None:
                seen.append(event)

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.2)
    here.append(run_id, token(4, " d"))
    here.append(run_id, RunEvent(5, "done", "42"))
    async with asyncio.timeout(5):
        await follower
    assert [e.seq for e in seen] == [2, 3, 4, 5]
    assert "".join(e.data for e in seen if e.kind == "token") == " b\ndata: c d"
    ttl = await there._redis.ttl(KEY_PREFIX + run_id)
    assert 0 < ttl <= 60


async def test_unknown_runs_are_not_found(
    logs: tuple[RedisRunEventLog, RedisRunEventLog],
) -> None:
    _, there = logs
    missing = str(uuid.uuid4())
    assert not await there.locate(missing)
    with pytest.raises(RunNotFoundError):
        async for _ in there.follow(missing):
            pass


async def test_a_cancel_request_reaches_the_process_that_runs_the_run() -> None:
    require_service("Redis", redis_base())
    received: list[str] = []
    runner = RedisCancelBus(redis_base(), received.append)
    asker = RedisCancelBus(redis_base(), lambda _: None)
    await runner.start()
    await asker.start()
    try:
        run_id = str(uuid.uuid4())
        listening = await asker.request(run_id)
        async with asyncio.timeout(5):
            while run_id not in received:
                await asyncio.sleep(0.01)
    finally:
        await runner.aclose()
        await asker.aclose()
    assert listening >= 2
