"""``start_task`` runs a task's first step at once, as that task; the task goes on from there."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from agenthost.errors import ModelRateLimitedError
from agenthost.llm.base import ModelRequest
from agenthost.runs.eager import start_task
from agenthost.runs.turn import TurnRequest
from agenthost.services import ServerServices
from agenthost.testing import FunctionModel, Reply
from tests.api.conftest import running_app
from tests.support.loops import on_each_loop

seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


@on_each_loop
async def test_the_first_step_runs_before_start_task_returns_and_the_rest_later() -> None:
    loop = asyncio.get_running_loop()
    steps: list[str] = []
    gate = loop.create_future()

    async def work() -> str:
        steps.append("first")
        value = await gate
        steps.append("second")
        await asyncio.sleep(0)
        steps.append("third")
        return f"done {value}"

    task = start_task(loop, work(), name="eager")
    assert steps == ["first"]
    assert task.get_name() == "eager"
    assert not task.done()
    await asyncio.sleep(0)
    assert steps == ["first"]  # still waiting for the gate
    gate.set_result(7)
    assert await task == "done 7"
    assert steps == ["first", "second", "third"]


@on_each_loop
async def test_the_first_step_runs_as_the_new_task_in_its_own_context() -> None:
    loop = asyncio.get_running_loop()
    caller = asyncio.current_task()
    seen.set("caller's")
    inside: list[object] = []

    async def work() -> None:
        inside.append(asyncio.current_task())
        inside.append(seen.get())
        seen.set("task's")
        await asyncio.sleep(0)
        inside.append(asyncio.current_task())
        inside.append(seen.get())

    task = start_task(loop, work(), name="eager")
    assert asyncio.current_task() is caller  # given back to the caller
    assert seen.get() == "caller's"  # what the task set stays in the task
    await task
    assert inside == [task, "caller's", task, "task's"]


@on_each_loop
async def test_a_timeout_entered_in_the_first_step_cancels_the_task_not_the_caller() -> None:
    loop = asyncio.get_running_loop()

    async def slow() -> str:
        async with asyncio.timeout(0.05):  # binds to the current task
            await asyncio.sleep(10)
        return "not reached"

    task = start_task(loop, slow(), name="eager")
    with pytest.raises(TimeoutError):
        await task
    await asyncio.sleep(0.1)  # the caller was not cancelled: it goes on


@on_each_loop
async def test_a_coroutine_that_ends_in_its_first_step_gives_its_result_or_error() -> None:
    loop = asyncio.get_running_loop()

    async def quick() -> int:
        return 42

    async def broken() -> int:
        raise ValueError("bad")

    assert await start_task(loop, quick(), name="quick") == 42
    with pytest.raises(ValueError, match="bad"):
        await start_task(loop, broken(), name="broken")


@on_each_loop
async def test_an_ended_first_step_keeps_its_result_when_cancelled_before_the_task_ran() -> None:
    loop = asyncio.get_running_loop()

    async def quick() -> int:
        return 42

    task = start_task(loop, quick(), name="quick")
    task.cancel()
    assert await task == 42


@on_each_loop
async def test_cancelled_before_its_first_turn_the_coroutine_stops_waiting_and_cleans_up() -> None:
    loop = asyncio.get_running_loop()
    waited_on = loop.create_future()
    cleaned: list[str] = []

    async def wait() -> None:
        try:
            await waited_on
        finally:
            cleaned.append("cleaned")

    task = start_task(loop, wait(), name="eager")
    assert task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert cleaned == ["cleaned"]
    assert waited_on.cancelled()


@on_each_loop
async def test_a_cancel_later_is_an_ordinary_cancel_the_task_may_handle() -> None:
    loop = asyncio.get_running_loop()

    async def handles() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            assert task is not None
            task.uncancel()
            return "saved what it had"
        return "not reached"

    task = start_task(loop, handles(), name="eager")
    await asyncio.sleep(0.01)
    task.cancel()
    assert await task == "saved what it had"
    assert not task.cancelled()


async def test_a_run_asks_the_model_before_start_returns() -> None:
    gate = asyncio.Event()

    async def waits(_: ModelRequest) -> Reply:
        await gate.wait()
        return Reply("late words")

    model = FunctionModel(waits)
    async with running_app(model) as (app, _):
        services: ServerServices = app.state.services
        started = await services.runs.start(TurnRequest(message="hi", owner=None))
        assert len(model.requests) == 1  # no turn of the loop in between
        assert not started.ended.done()
        gate.set()
        outcome = await started.outcome()
    assert (outcome.status, outcome.text) == ("completed", "late words")


async def test_a_reply_that_ends_within_start_reaches_chat_from_the_run_itself() -> None:
    """Nothing to wait for: the run has ended when ``start`` returns, and /chat still
    answers from its outcome (a failure keeps the model's Retry-After), not the store."""
    async with running_app(FunctionModel(lambda _: Reply("at once"))) as (app, client):
        services: ServerServices = app.state.services
        started = await services.runs.start(TurnRequest(message="hi", owner=None))
        assert started.ended.done()
        whole = await client.post("/chat", json={"message": "again"})
    limited = ModelRateLimitedError("Slow down", retry_after=7)
    async with running_app(FunctionModel(lambda _: Reply("", error=limited))) as (_, client):
        failed = await client.post("/chat", json={"message": "hi"})
    assert (whole.status_code, whole.json()["response"]) == (200, "at once")
    assert (failed.status_code, failed.headers["retry-after"]) == (502, "7")
    assert failed.json()["error"] == "Slow down"
