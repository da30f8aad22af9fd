"""API keys and idempotency keys in memory: the half of ``MemorySessionStore`` about keys."""

from __future__ import annotations

from dataclasses import replace

from agenthost.clock import Clock
from agenthost.stores import ids
from agenthost.stores.base import (
    ApiKeyId,
    ApiKeyRecord,
    IdempotencyRecord,
    Owner,
    RunId,
    StoreOptions,
)
from agenthost.stores.rules import idempotency_conflict


class MemoryKeys:
    backend = "memory"

    def __init__(self, *, clock: Clock, options: StoreOptions) -> None:
        self._clock = clock
        self._options = options
        self._idempotency: dict[tuple[Owner, str], IdempotencyRecord] = {}
        self._api_keys: dict[ApiKeyId, ApiKeyRecord] = {}

    # -- idempotency ---------------------------------------------------------------

    async def put_idempotency(
        self, owner: Owner, key: str, fingerprint: str, run_id: RunId
    ) -> IdempotencyRecord:
        slot = (ids.check_owner(owner), ids.check_idempotency_key(key))
        run_id = ids.parse_run_id(run_id)
        existing = self._live_idempotency(slot, fingerprint)
        if existing is not None:
            return existing
        now = self._clock.now()
        record = IdempotencyRecord(
            slot[0], slot[1], fingerprint, run_id, now, now + self._options.idempotency_ttl
        )
        self._idempotency[slot] = record
        return record

    async def get_idempotency(
        self, owner: Owner, key: str, *, fingerprint: str
    ) -> IdempotencyRecord | None:
        slot = (ids.check_owner(owner), ids.check_idempotency_key(key))
        return self._live_idempotency(slot, fingerprint)

    # -- API keys ------------------------------------------------------------------

    async def create_api_key(
        self,
        *,
        name: str,
        prefix: str,
        key_hash: str,
        rpm: int | None = None,
        tpm: int | None = None,
        max_streams: int | None = None,
        admin: bool = False,
    ) -> ApiKeyRecord:
        if any(key.key_hash == key_hash for key in self._api_keys.values()):
            raise ValueError("an API key with this hash already exists")
        record = ApiKeyRecord(
            id=ApiKeyId(ids.new_id()),
            name=name,
            prefix=prefix,
            key_hash=key_hash,
            rpm=rpm,
            tpm=tpm,
            max_streams=max_streams,
            admin=admin,
            created_at=self._clock.now(),
        )
        self._api_keys[record.id] = record
        return record

    async def get_api_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        return next((k for k in self._api_keys.values() if k.key_hash == key_hash), None)

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        return sorted(self._api_keys.values(), key=lambda k: (k.created_at, k.id))

    async def revoke_api_key(self, key_id: ApiKeyId) -> ApiKeyRecord | None:
        record = self._api_keys.get(ids.parse_api_key_id(key_id))
        if record is None:
            return None
        if record.revoked_at is None:
            record = replace(record, revoked_at=self._clock.now())
            self._api_keys[record.id] = record
        return record

    async def touch_api_key(self, key_id: ApiKeyId) -> None:
        record = self._api_keys.get(ids.parse_api_key_id(key_id))
        if record is not None:
            self._api_keys[record.id] = replace(record, last_used_at=self._clock.now())

    def _live_idempotency(
        self, slot: tuple[Owner, str], fingerprint: str
    ) -> IdempotencyRecord | None:
        record = self._idempotency.get(slot)
        if record is None or record.expires_at <= self._clock.now():
            return None
        if record.fingerprint != fingerprint:
            raise idempotency_conflict()
        return record
