"""The in-process run event log: followers, idle pings, cancelled followers, batches."""

from __future__ import annotations

import asyncio
import gc
import uuid

import pytest

from agenthost.errors import RunNotFoundError
from agenthost.runs.events import RunEvent
from agenthost.runs.log import MemoryRunEventLog


def token(seq: int, text: str) -> RunEvent:
    return RunEvent(seq, "token", text)


async def collect(
    log: MemoryRunEventLog, run_id: str, *, after: int = 0, idle_timeout: float | None = None
) -> list[RunEvent | None]:
    return [event async for event in log.follow(run_id, after=after, idle_timeout=idle_timeout)]


async def test_every_follower_gets_every_event_live_and_from_any_point() -> None:
    log = MemoryRunEventLog()
    run_id = str(uuid.uuid4())
    log.open(run_id)
    log.append(run_id, token(1, "a"))
    followers = [
        asyncio.create_task(collect(log, run_id)),
        asyncio.create_task(collect(log, run_id, after=1)),
    ]
    await asyncio.sleep(0.01)
    for seq in range(2, 6):
        log.append(run_id, token(seq, str(seq)))
        await asyncio.sleep(0)
    log.append(run_id, RunEvent(6, "done", "9"))
    everything, after_first = await asyncio.gather(*followers)
    assert [e.seq for e in everything if e is not None] == [1, 2, 3, 4, 5, 6]
    assert [e.seq for e in after_first if e is not None] == [2, 3, 4, 5, 6]


async def test_a_cancelled_follower_does_not_disturb_the_others() -> None:
    log = MemoryRunEventLog()
    run_id = str(uuid.uuid4())
    log.open(run_id)
    leaving = asyncio.create_task(collect(log, run_id))
    staying = asyncio.create_task(collect(log, run_id))
    await asyncio.sleep(0.01)
    leaving.cancel()
    await asyncio.sleep(0)
    log.append(run_id, token(1, "a"))
    log.append(run_id, RunEvent(2, "done", "1"))
    async with asyncio.timeout(2):
        assert [e.seq for e in await staying if e is not None] == [1, 2]
    assert leaving.cancelled()


async def test_an_idle_follower_gets_pings_until_the_next_event() -> None:
    log = MemoryRunEventLog()
    run_id = str(uuid.uuid4())
    log.open(run_id)
    follower = asyncio.create_task(collect(log, run_id, idle_timeout=0.05))
    await asyncio.sleep(0.5)
    log.append(run_id, token(1, "late"))
    await asyncio.sleep(0.01)
    log.append(run_id, RunEvent(2, "done", "1"))
    seen = await follower
    pings = seen.index(token(1, "late"))
    assert 2 <= pings <= 11  # one per 50 ms of waiting, fewer on a loaded machine
    assert all(e is None for e in seen[:pings])
    assert seen[pings:] == [token(1, "late"), RunEvent(2, "done", "1")]


async def test_ready_hands_over_everything_already_logged() -> None:
    log = MemoryRunEventLog()
    run_id = str(uuid.uuid4())
    log.open(run_id)
    follower = log.follow(run_id)
    log.append(run_id, token(1, "a"))
    assert await anext(follower) == token(1, "a")
    assert follower.ready() == []
    for seq in (2, 3):
        log.append(run_id, token(seq, str(seq)))
    log.append(run_id, RunEvent(4, "done", "3"))
    assert [e.seq for e in follower.ready()] == [2, 3, 4]
    with pytest.raises(StopAsyncIteration):
        await anext(follower)


async def test_an_unknown_run_is_not_found() -> None:
    with pytest.raises(RunNotFoundError):
        await collect(MemoryRunEventLog(), str(uuid.uuid4()))


async def test_a_closed_runs_events_stop_costing_the_garbage_collector() -> None:
    log = MemoryRunEventLog()
    run_id = str(uuid.uuid4())
    log.open(run_id)
    slow = log.follow(run_id)
    events = [token(seq, f"t{seq}") for seq in range(1, 200)] + [RunEvent(200, "done", "0")]
    for event in events[:100]:
        log.append(run_id, event)
    assert (await anext(slow)) == events[0]  # a follower midway when the run closes
    for event in events[100:]:
        log.append(run_id, event)
    gc.collect()
    before = len(gc.get_objects())
    del events[:]
    gc.collect()
    # The 200 RunEvent objects are gone; a handful of objects hold their content.
    assert len(gc.get_objects()) <= before - 195
    assert [e async for e in slow] == [token(seq, f"t{seq}") for seq in range(2, 200)] + [
        RunEvent(200, "done", "0")
    ]
    replayed = [e for e in await collect(log, run_id, after=197) if e is not None]
    assert replayed == [token(198, "t198"), token(199, "t199"), RunEvent(200, "done", "0")]
