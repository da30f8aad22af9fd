"""``start_task``: a task whose first step runs at once, in the caller's turn of the loop.

A run's reply starts with a request to the model. Started as an ordinary task, that
request waits for the event loop to come round once more (under load, every other
connection's work of that turn first), which is time to first token added to every
reply. Python 3.12 starts such a task eagerly (``eager_start``); on 3.11 the same is
done here: the task object is made first, then its coroutine is stepped by hand as
that task (the current task and the task's context are the task's own) until it
first waits, and the task goes on from there.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import types
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar, cast

T = TypeVar("T")


def start_task(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], *, name: str
) -> asyncio.Task[T]:
    """A task running ``coro``, which has already run up to where it first waits."""
    if sys.version_info >= (3, 12):  # pragma: no cover - the project runs on 3.11
        return asyncio.Task(coro, loop=loop, name=name, eager_start=True)
    return _start_stepped(loop, coro, name)


def _start_stepped(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], name: str
) -> asyncio.Task[T]:
    first = _FirstStep(coro)
    going_on = _go_on(first)
    going_on.send(None)  # primed: a cancel before the task's first step lands inside
    context = contextvars.copy_context()
    task = loop.create_task(cast(Coroutine[Any, Any, T], going_on), name=name, context=context)
    caller = asyncio.tasks.current_task(loop)
    if caller is not None:
        asyncio.tasks._leave_task(loop, caller)
    asyncio.tasks._enter_task(loop, task)
    try:
        context.run(first.take)
    finally:
        asyncio.tasks._leave_task(loop, task)
        if caller is not None:
            asyncio.tasks._enter_task(loop, caller)
    return task


class _FirstStep:
    """The first step of a coroutine, taken by hand: what it gave, or how it ended."""

    __slots__ = ("coro", "raised", "returned", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro: Coroutine[Any, Any, Any] | None = coro
        self.yielded: Any = None
        self.returned: Any = None
        self.raised: BaseException | None = None

    def take(self) -> None:
        assert self.coro is not None
        try:
            self.yielded = self.coro.send(None)
        except StopIteration as stop:
            self.coro, self.returned = None, stop.value
        except BaseException as exc:  # handed to the task, which ends with it
            self.coro, self.raised = None, exc


@types.coroutine
def _go_on(first: _FirstStep) -> Generator[Any, None, Any]:
    """The task's coroutine: gives the task what the first step gave, then delegates.

    A generator delegating with ``yield from``, not an object with a ``send``
    method, so that every later step of the task (each token of a reply) reaches
    the coroutine in C, without a call into Python.
    """
    cancel: BaseException | None = None
    try:
        yield  # where priming stops: the task's own first step starts here
    except BaseException as exc:  # cancelled before its first step
        cancel = exc
    if first.raised is not None:  # it had ended: a finished task cannot be cancelled
        raise first.raised
    coro = first.coro
    if coro is None:
        return first.returned
    waits_on = first.yielded
    while True:
        if cancel is not None:  # it stops waiting, as in a task cancelled while it waits
            if isinstance(waits_on, asyncio.Future):
                waits_on.cancel()
            try:
                waits_on = coro.throw(cancel)
            except StopIteration as stop:
                return stop.value
            cancel = None
        try:
            yield waits_on
        except BaseException as exc:
            cancel = exc
        else:
            break
    return (yield from coro)
