"""``StepTimer``: a time limit on each wait of a stream, with one timer for the whole stream.

``asyncio.timeout`` around each wait for the next chunk schedules a timer handle
and cancels it again for every token; under load that was the largest single
CPU cost of streaming a reply (docs/performance.md). A ``StepTimer`` keeps one
handle armed. Each wait records when it is due; when the handle fires it
re-arms itself for the current wait's due time, or, if that has passed,
cancels the waiting task, and the wait raises ``TimeoutError`` as
``asyncio.timeout`` would. Between waits the handle may fire and find nothing
to do.

The loop is looked up once, at the first wait, because on Python 3.11 each
``asyncio.get_running_loop()`` (also inside ``current_task()`` without a loop,
and ``asyncio.timeout``) is a ``getpid`` system call, a cost per token
otherwise. Waits may run in different tasks (``asyncio.wait_for`` makes one
per call), one at a time.

``bound`` does the same for a wait on a future the caller awaits itself: at
the limit the future fails with ``TimeoutError`` instead of the task being
cancelled, so a stream's reader needs no wrapping coroutine per chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar, cast

__all__ = ["StepTimer"]

_T = TypeVar("_T")


class StepTimer:
    """Bounds a stream's waits, one at a time; close it when the stream ends.

    ``loop``: the running loop, when the caller has it already (else looked up at the first wait).
    """

    def __init__(self, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._task: asyncio.Task[object] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._armed_for = 0.0  # loop time the handle fires at
        self._waiting = False
        self._expiring = False  # the task was cancelled for this wait's limit
        self._due = 0.0
        self._future: asyncio.Future[Any] | None = None  # what ``bound`` fails at the limit
        self.expired = False
        """Whether the last wait ended because its limit passed."""

    async def wait(self, step: Awaitable[_T], limit: float) -> _T:
        """``await step``, raising ``TimeoutError`` if it takes more than ``limit`` seconds."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        # With the loop given, current_task() is a lookup, not a getpid: cheap per wait,
        # and right even when successive waits run in different tasks.
        self._task = asyncio.current_task(loop)
        self.expired = False
        self._due = loop.time() + limit
        if self._handle is None or self._due < self._armed_for:
            self._arm(loop)
        self._waiting = True
        try:
            return await step
        except asyncio.CancelledError:
            if not self._expiring:
                raise
            self._expiring = False
            self.expired = True
            assert self._task is not None
            if self._task.uncancel() > 0:
                raise  # cancelled from elsewhere too: that cancel wins
            raise TimeoutError from None
        finally:
            self._waiting = False
            if self._expiring:  # the step ended another way after our cancel: take it back
                self._expiring = False
                assert self._task is not None
                self._task.uncancel()

    def bound(self, future: asyncio.Future[Any], due: float) -> None:
        """Fail ``future`` with ``TimeoutError`` unless it is done by loop time ``due``.

        For a wait on a future the caller awaits itself, once per chunk of a
        stream: no wrapping coroutine and no task cancel, as ``wait`` needs.
        Needs the loop given at construction (``StepTimer(loop=...)``).
        """
        self._future, self._due = future, due
        if self._handle is None or due < self._armed_for:
            self._arm(cast(asyncio.AbstractEventLoop, self._loop))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def __enter__(self) -> StepTimer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_for = self._due
        self._handle = loop.call_at(self._due, self._fire)

    def _fire(self) -> None:
        self._handle = None
        loop, task = self._loop, self._task
        future = self._future
        if future is not None and loop is not None:
            if future.done():
                return  # between waits: the next one arms it again
            if loop.time() >= self._due:
                future.set_exception(TimeoutError())
            else:
                self._arm(loop)
            return
        if not self._waiting or self._expiring or loop is None or task is None:
            return  # between waits: the next wait arms it again
        if loop.time() >= self._due:
            self._expiring = True
            task.cancel()
        else:
            self._arm(loop)
