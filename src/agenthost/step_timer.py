"""``StepTimer``: a time limit on each wait of a stream, with one timer for the whole stream.

``asyncio.timeout`` around each wait for the next chunk schedules a timer handle
and cancels it again for every token; under load that was the largest single
CPU cost of streaming a reply (docs/performance.md). A ``StepTimer`` keeps one
handle armed. Each wait records when it is due; when the handle fires it
re-arms itself for the current wait's due time, or, if that has passed, expires
the wait, which then raises ``TimeoutError`` as ``asyncio.timeout`` would (the
wait's own ``asyncio.timeout(None)`` context turns the cancellation into it,
and costs no timer). Between waits the handle may fire and find nothing to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["StepTimer"]

_T = TypeVar("_T")


class StepTimer:
    """Bounds the waits of one task, one at a time; close it when the stream ends."""

    def __init__(self) -> None:
        self._handle: asyncio.TimerHandle | None = None
        self._armed_for = 0.0  # loop time the handle fires at
        self._waiting: asyncio.Timeout | None = None
        self._due = 0.0
        self.expired = False
        """Whether the last wait ended because its limit passed."""

    async def wait(self, step: Awaitable[_T], limit: float) -> _T:
        """``await step``, raising ``TimeoutError`` if it takes more than ``limit`` seconds."""
        loop = asyncio.get_running_loop()
        timeout = asyncio.timeout(None)
        self.expired = False
        async with timeout:
            self._waiting = timeout
            self._due = loop.time() + limit
            if self._handle is None or self._due < self._armed_for:
                self._arm(loop)
            try:
                return await step
            finally:
                self._waiting = None
                self.expired = timeout.expired()

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
        waiting = self._waiting
        if waiting is None:
            return  # between waits: the next wait arms it again
        loop = asyncio.get_running_loop()
        if loop.time() >= self._due:
            waiting.reschedule(self._due)  # in the past: cancels the waiting task now
        else:
            self._arm(loop)
