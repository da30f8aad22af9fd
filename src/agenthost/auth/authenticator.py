"""The ``Authenticator`` seam, and the one that checks keys against the store.

Checked keys are cached in the process for a couple of seconds (revocation
reaches every worker and replica within that time, since they share the
store), unknown keys too, so a flood of bad keys costs one query per key per
period. The stored hash is compared in constant time.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections import OrderedDict
from typing import Protocol

from agenthost.auth.keys import Limits, Principal, hash_key, principal_for, well_formed
from agenthost.clock import Clock
from agenthost.errors import AuthenticationError
from agenthost.stores.base import ApiKeyId, ApiKeyRecord, ApiKeyStore

logger = logging.getLogger(__name__)

CACHE_SIZE = 10_000
TOUCH_EVERY_SECONDS = 60.0


class Authenticator(Protocol):
    async def authenticate(self, secret: str | None, *, client: str) -> Principal:
        """The caller, or ``AuthenticationError`` (missing, malformed, unknown, revoked)."""
        ...


class AnonymousAuthenticator:
    """Authentication switched off: every caller is anonymous, limited by address."""

    def __init__(self, defaults: Limits) -> None:
        self._defaults = defaults

    async def authenticate(self, secret: str | None, *, client: str) -> Principal:
        return Principal(
            key_id=None,
            name="anonymous",
            prefix=None,
            admin=False,
            limits=self._defaults,
            client=client,
        )


class StoreAuthenticator:
    def __init__(
        self, store: ApiKeyStore, clock: Clock, *, defaults: Limits, cache_seconds: float = 2.0
    ) -> None:
        self._store = store
        self._clock = clock
        self._defaults = defaults
        self._cache_seconds = cache_seconds
        self._cache: OrderedDict[str, tuple[float, ApiKeyRecord | None]] = OrderedDict()
        self._touched: dict[ApiKeyId, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def authenticate(self, secret: str | None, *, client: str) -> Principal:
        if not secret:
            raise AuthenticationError(
                "An API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                reason="missing",
            )
        if not well_formed(secret):
            raise AuthenticationError("Invalid API key", reason="malformed")
        key_hash = hash_key(secret)
        record = await self._lookup(key_hash)
        if record is None or not hmac.compare_digest(record.key_hash, key_hash):
            raise AuthenticationError("Invalid API key", reason="unknown")
        if record.revoked_at is not None:
            raise AuthenticationError("Invalid API key", reason="revoked")
        self._touch(record.id)
        return principal_for(record, client=client, defaults=self._defaults)

    async def _lookup(self, key_hash: str) -> ApiKeyRecord | None:
        now = self._clock.monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        record = await self._store.get_api_key_by_hash(key_hash)
        self._cache[key_hash] = (now, record)
        self._cache.move_to_end(key_hash)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return record

    def _touch(self, key_id: ApiKeyId) -> None:
        """Record ``last_used_at`` at most once a minute per key, off the request path."""
        now = self._clock.monotonic()
        if now - self._touched.get(key_id, float("-inf")) < TOUCH_EVERY_SECONDS:
            return
        self._touched[key_id] = now
        task = asyncio.create_task(self._store.touch_api_key(key_id))
        self._tasks.add(task)
        task.add_done_callback(self._touch_done)

    def _touch_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("could not record an API key's last use: %s", task.exception())
