"""Cancelling a run that another worker or replica is running, over Redis pub/sub.

Every process subscribes to one channel; a cancel request for a run that is
not running here is published there, and the process that runs it stops it.
Pub/sub delivers only to processes listening at that moment, which is exactly
right: a run lives only as long as the process that runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

logger = logging.getLogger(__name__)

CHANNEL = "agenthost:cancel-run"
RECONNECT_DELAY = 1.0


class RedisCancelBus:
    def __init__(self, url: str, on_cancel: Callable[[str], object]) -> None:
        from redis.asyncio import Redis

        self._redis: Redis = Redis.from_url(url, socket_connect_timeout=5)
        self._on_cancel = on_cancel
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="cancel bus")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._subscribed.wait()

    async def request(self, run_id: str) -> int:
        """Ask every process to cancel ``run_id``; returns how many were listening."""
        return int(await self._redis.publish(CHANNEL, run_id))

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._redis.aclose()

    async def _listen(self) -> None:
        while True:
            try:
                pubsub: PubSub = self._redis.pubsub(ignore_subscribe_messages=True)
                async with pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self._subscribed.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._on_cancel(message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("cancel bus lost Redis; reconnecting", exc_info=True)
                await asyncio.sleep(RECONNECT_DELAY)
