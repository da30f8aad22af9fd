"""Run an async test on asyncio's own event loop and on uvloop's, which the server runs on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def on_each_loop(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[str], None]:
    """The test on asyncio's own loop and on uvloop's (their transports differ)."""

    @pytest.mark.parametrize("loop_kind", list(LOOPS))
    def run(loop_kind: str) -> None:
        with asyncio.Runner(loop_factory=LOOPS[loop_kind]) as runner:
            runner.run(test())

    run.__name__, run.__doc__ = test.__name__, test.__doc__
    return run
