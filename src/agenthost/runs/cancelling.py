"""Cancelling a run wherever it runs: here, or (over the cancel bus) in another process.

A run of this process is stopped at once. Otherwise, if the store says it is
still running and a cancel bus connects the processes, the request goes out on
the bus and this waits (briefly) for the store to show that the run stopped.
"""

from __future__ import annotations

import asyncio

from agenthost.clock import Clock
from agenthost.runs.cancel_bus import RedisCancelBus
from agenthost.runs.manager import RunManager
from agenthost.stores.base import RunId, SessionStore

REMOTE_WAIT_SECONDS = 5.0
POLL_SECONDS = 0.05


async def cancel_anywhere(
    run_id: RunId,
    *,
    runs: RunManager,
    store: SessionStore,
    bus: RedisCancelBus | None,
    clock: Clock,
) -> bool:
    """True if the run was running and is now cancelled; False if it had already ended."""
    if runs.cancel(run_id):
        return True
    if bus is None or (await store.get_run(run_id)).status != "running":
        return False
    await bus.request(run_id)
    deadline = clock.monotonic() + REMOTE_WAIT_SECONDS
    while clock.monotonic() < deadline:
        status = (await store.get_run(run_id)).status
        if status != "running":
            return status == "cancelled"
        await asyncio.sleep(POLL_SECONDS)
    return False
