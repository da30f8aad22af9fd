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
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

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
    stepped = _SteppedOnce(coro)
    context = contextvars.copy_context()
    task: asyncio.Task[T] = loop.create_task(stepped, name=name, context=context)
    caller = asyncio.tasks.current_task(loop)
    if caller is not None:
        asyncio.tasks._leave_task(loop, caller)
    asyncio.tasks._enter_task(loop, task)
    try:
        context.run(stepped.first_step)
    finally:
        asyncio.tasks._leave_task(loop, task)
        if caller is not None:
            asyncio.tasks._enter_task(loop, caller)
    return task


class _SteppedOnce:
    """A coroutine whose first step was taken by hand, for its task to go on with.

    The task's own first step gets what that step gave (the future the coroutine waits
    on, or how it ended); every later step goes straight to the coroutine.
    """

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro = coro
        self._first: tuple[int, Any] | None = None

    def first_step(self) -> None:
        try:
            self._first = (_WAITS, self._coro.send(None))
        except StopIteration as stop:
            self._first = (_RETURNED, stop.value)
        except BaseException as exc:  # handed to the task, which ends with it
            self._first = (_RAISED, exc)

    def send(self, value: Any) -> Any:
        if self._first is None:
            return self._coro.send(value)
        return self._hand_over()

    def __next__(self) -> Any:  # how the task steps it with None
        if self._first is None:
            return self._coro.send(None)
        return self._hand_over()

    def throw(self, *exc: Any) -> Any:
        """An exception for the coroutine; before the task's first step, a cancel.

        The coroutine stops waiting at once, as in a task cancelled while it waits;
        a coroutine that had already ended keeps its ending, as a done task would.
        """
        first, self._first = self._first, None
        if first is None:
            return self._coro.throw(*exc)
        kind, what = first
        if kind != _WAITS:  # it had ended: a finished task cannot be cancelled
            self._first = first
            return self._hand_over()
        if isinstance(what, asyncio.Future):
            what.cancel()
        return self._coro.throw(*exc)

    def close(self) -> None:
        self._coro.close()

    def _hand_over(self) -> Any:
        assert self._first is not None
        (kind, what), self._first = self._first, None
        if kind == _WAITS:
            return what
        if kind == _RETURNED:
            raise StopIteration(what)
        raise what

    def __await__(self) -> Generator[Any, None, Any]:
        return self

    def __iter__(self) -> _SteppedOnce:
        return self


_WAITS, _RETURNED, _RAISED = range(3)
