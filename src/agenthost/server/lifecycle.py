"""Graceful stop: the moment SIGTERM or SIGINT arrives, not when uvicorn gets round to it.

uvicorn stops accepting connections on a stop signal, then waits for open ones
to finish before it runs the app's shutdown. Open streams only finish when
their runs do, so the app must hear the signal itself: ``on_stop_signal``
chains a callback in front of uvicorn's own handler. The callback marks the
app as stopping (``/ready`` answers 503, new work is refused) and starts the
run manager's shutdown: replies get the grace period, then are interrupted
(saved, their streams ended with an error event), so connections close and
uvicorn can finish well before a supervisor's kill.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
Handler = Callable[[int, FrameType | None], object] | int | None


@contextmanager
def on_stop_signal(callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback`` (on the event loop) when a stop signal arrives; restore on exit."""
    loop = asyncio.get_running_loop()
    previous: dict[int, Handler] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(callback)
        chained = previous.get(signum)
        if callable(chained):
            chained(signum, frame)
        elif chained == signal.SIG_DFL and signum == signal.SIGINT:
            raise KeyboardInterrupt

    try:
        for stop in STOP_SIGNALS:
            previous[stop] = signal.getsignal(stop)
            signal.signal(stop, handle)
    except ValueError:  # not the main thread (an embedding server): rely on the lifespan
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if signal.getsignal(signum) is handle:
                signal.signal(signum, handler)
