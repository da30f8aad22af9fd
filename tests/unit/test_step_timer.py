"""StepTimer: a limit on each wait of a stream, kept with one timer handle per stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from agenthost.step_timer import StepTimer


async def value_after(seconds: float, value: str = "chunk") -> str:
    await asyncio.sleep(seconds)
    return value


async def test_a_wait_within_its_limit_returns_the_value() -> None:
    with StepTimer() as timer:
        assert await timer.wait(value_after(0.01), 1.0) == "chunk"
        assert not timer.expired


async def test_a_wait_past_its_limit_raises_timeout_and_stops_the_step() -> None:
    stopped = asyncio.Event()

    async def slow() -> str:
        try:
            await asyncio.sleep(10)
        finally:
            stopped.set()
        return "never"

    with StepTimer() as timer:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await timer.wait(slow(), 0.05)
        assert timer.expired
        assert stopped.is_set()
        assert time.monotonic() - started < 2


async def test_the_limit_is_per_wait_not_for_the_whole_stream() -> None:
    # Thirty waits of 20 ms each under a 300 ms limit: 600 ms in all, none too long.
    with StepTimer() as timer:
        for _ in range(30):
            assert await timer.wait(value_after(0.02), 0.3) == "chunk"
        assert not timer.expired


async def test_a_shorter_limit_after_a_longer_one_is_kept() -> None:
    with StepTimer() as timer:
        await timer.wait(value_after(0), 30.0)  # arms the handle 30 s ahead
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await timer.wait(value_after(10), 0.05)
        assert time.monotonic() - started < 2


async def test_the_timer_firing_between_waits_changes_nothing() -> None:
    with StepTimer() as timer:
        await timer.wait(value_after(0), 0.02)
        await asyncio.sleep(0.1)  # the handle fires with nothing waiting
        assert await timer.wait(value_after(0.01), 0.05) == "chunk"
        with pytest.raises(TimeoutError):
            await timer.wait(value_after(10), 0.05)


async def test_a_cancel_from_elsewhere_stays_a_cancel() -> None:
    timer = StepTimer()

    async def waiting() -> str:
        return await timer.wait(value_after(10), 5.0)

    task = asyncio.create_task(waiting())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not timer.expired
    timer.close()


async def test_many_waits_schedule_one_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    scheduled: list[float] = []
    call_at = loop.call_at

    def counting(when: float, callback: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        scheduled.append(when)
        return call_at(when, callback, *args)

    monkeypatch.setattr(loop, "call_at", counting)
    with StepTimer() as timer:
        for _ in range(50):
            await timer.wait(value_after(0), 30.0)
    assert len(scheduled) == 1


async def test_waits_from_different_tasks_each_get_their_limit() -> None:
    # asyncio.wait_for runs each step in a task of its own (Python 3.11).
    with StepTimer() as timer:
        assert await asyncio.create_task(timer.wait(value_after(0), 30.0)) == "chunk"
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.create_task(timer.wait(value_after(10), 0.05))
        assert timer.expired
        assert time.monotonic() - started < 2


async def test_a_step_that_swallows_the_cancel_leaves_the_timer_working() -> None:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "kept going"
        return "never"

    with StepTimer() as timer:
        assert await timer.wait(stubborn(), 0.05) == "kept going"
        task = asyncio.current_task()
        assert task is not None
        assert task.cancelling() == 0
        with pytest.raises(TimeoutError):
            await timer.wait(value_after(10), 0.05)


async def test_bound_fails_a_future_at_its_due_time_and_leaves_a_done_one_alone() -> None:
    loop = asyncio.get_running_loop()
    with StepTimer(loop=loop) as timer:
        answered = loop.create_future()
        timer.bound(answered, loop.time() + 0.05)
        loop.call_later(0.01, answered.set_result, None)
        await answered  # done in time: the timer firing later changes nothing
        late = loop.create_future()
        timer.bound(late, loop.time() + 0.05)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await late
        assert 0.04 <= time.monotonic() - started < 1


async def test_bound_keeps_one_handle_and_counts_each_due_time() -> None:
    # Each chunk's wait moves the due time later: the handle armed for the first
    # one must re-arm itself rather than fail a wait that still has time.
    loop = asyncio.get_running_loop()
    with StepTimer(loop=loop) as timer:
        for _ in range(6):
            waiter = loop.create_future()
            timer.bound(waiter, loop.time() + 0.08)
            loop.call_later(0.03, waiter.set_result, None)
            await waiter  # 6 x 0.03 s: past the first due time, never past its own
    with StepTimer(loop=loop) as timer:
        patient = loop.create_future()
        timer.bound(patient, loop.time() + 5)  # the handle is armed 5 s ahead
        patient.set_result(None)
        await patient
        shorter = loop.create_future()
        timer.bound(shorter, loop.time() + 0.01)  # earlier than the armed handle
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await shorter
        assert time.monotonic() - started < 2  # not the 5 s the handle was armed for
