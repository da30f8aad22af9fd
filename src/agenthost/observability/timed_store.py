"""``TimedStore``: the ``Store`` it wraps, with every operation timed for the metrics.

A proxy by delegation (``__getattr__``), not a method per operation: an
operation added to the ``Store`` protocol is timed without touching this
module. ``timed_store`` gives it back typed as the ``Store`` it stands for.
Each operation lands in ``agenthost_store_operation_duration_seconds`` under
its method name (``begin_turn``, ``read_window``, ...), failures included.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import cast

from agenthost.observability.metrics import Metrics
from agenthost.stores.base import Store


def timed_store(store: Store, metrics: Metrics) -> Store:
    return cast(Store, TimedStore(store, metrics))


class TimedStore:
    def __init__(self, store: Store, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics
        self._backend = store.backend

    @property
    def backend(self) -> str:
        return self._backend

    @property
    def wrapped(self) -> Store:
        return self._store

    def __getattr__(self, name: str) -> object:
        attribute: object = getattr(self._store, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute
        timed = self._timed(name, attribute)
        setattr(self, name, timed)  # found directly from now on
        return timed

    def _timed(
        self, operation: str, method: Callable[..., Awaitable[object]]
    ) -> Callable[..., Awaitable[object]]:
        observe = self._metrics.store_operation_timer(operation, self._backend)

        @functools.wraps(method)
        async def timed(*args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                observe(time.perf_counter() - started)

        return timed
