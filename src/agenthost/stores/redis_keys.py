"""API keys and idempotency keys in Redis: the half of ``RedisSessionStore`` about keys.

A base class rather than a second store, so that one client serves both seams;
it also holds what all the Redis halves share: client, layout, scripts, errors.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.typing import EncodableT, FieldT

from agenthost.clock import Clock
from agenthost.stores import ids
from agenthost.stores import redis_scripts as lua
from agenthost.stores.base import (
    ApiKeyId,
    ApiKeyRecord,
    IdempotencyRecord,
    Owner,
    RunId,
    StoreOptions,
)
from agenthost.stores.encoding import from_micros, to_micros
from agenthost.stores.redis_client import translated
from agenthost.stores.redis_layout import (
    Layout,
    integer,
    member,
    member_id,
    optional_int,
    optional_time,
    text,
    text_hash,
)
from agenthost.stores.rules import idempotency_conflict


class RedisKeys:
    backend = "redis"

    def __init__(
        self,
        client: aioredis.Redis,
        layout: Layout,
        *,
        where: str,
        clock: Clock,
        options: StoreOptions,
    ) -> None:
        self._client = client
        self._layout = layout
        self._where = where
        self._clock = clock
        self._options = options
        ttl = options.redis_ttl
        self._ttl_ms = 0 if ttl is None else max(1, int(ttl.total_seconds() * 1000))
        self._scripts: dict[str, AsyncScript] = {}

    async def _script(self, name: str, keys: Sequence[str], *args: str | int) -> object:
        """Run one of ``redis_scripts`` (by name); the prefix goes first in ARGV."""
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self._client.register_script(getattr(lua, name))
        with translated(self._where):
            reply: object = await script(keys=list(keys), args=[self._layout.prefix, *args])
        return reply

    # -- idempotency ---------------------------------------------------------------

    async def put_idempotency(
        self, owner: Owner, key: str, fingerprint: str, run_id: RunId
    ) -> IdempotencyRecord:
        owner, key = ids.check_owner(owner), ids.check_idempotency_key(key)
        rid = ids.parse_run_id(run_id)
        now = self._clock.now()
        ttl = self._options.idempotency_ttl
        reply = await self._script(
            "PUT_IDEMPOTENCY",
            [self._layout.idempotency(owner, key)],
            fingerprint,
            rid,
            to_micros(now),
            to_micros(now + ttl),
            max(1, int(ttl.total_seconds() * 1000)),
        )
        assert isinstance(reply, list)
        match text(reply[0]):
            case "new":
                return IdempotencyRecord(owner, key, fingerprint, rid, now, now + ttl)
            case "existing":
                created, expires = (from_micros(integer(v)) for v in reply[2:4])
                return IdempotencyRecord(
                    owner, key, fingerprint, RunId(text(reply[1])), created, expires
                )
            case _:
                raise idempotency_conflict()

    async def get_idempotency(
        self, owner: Owner, key: str, *, fingerprint: str
    ) -> IdempotencyRecord | None:
        owner, key = ids.check_owner(owner), ids.check_idempotency_key(key)
        with translated(self._where):
            found = text_hash(await self._client.hgetall(self._layout.idempotency(owner, key)))
        if not found or int(found["expires_at"]) <= to_micros(self._clock.now()):
            return None
        if found["fingerprint"] != fingerprint:
            raise idempotency_conflict()
        created, expires = (
            from_micros(int(found["created_at"])),
            from_micros(int(found["expires_at"])),
        )
        return IdempotencyRecord(owner, key, fingerprint, RunId(found["run_id"]), created, expires)

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
        created = to_micros(record.created_at)
        fields: dict[FieldT, EncodableT] = {
            "id": record.id,
            "name": name,
            "prefix": prefix,
            "key_hash": key_hash,
            "admin": int(admin),
            "created_at": created,
        }
        for field, value in (("rpm", rpm), ("tpm", tpm), ("max_streams", max_streams)):
            if value is not None:
                fields[field] = value
        with translated(self._where):
            if not await self._client.set(self._layout.api_key_hash(key_hash), record.id, nx=True):
                raise ValueError("an API key with this hash already exists")
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hset(self._layout.api_key(record.id), mapping=fields)
                pipe.zadd(self._layout.api_keys, {member(created, record.id): 0})
                await pipe.execute()
        return record

    async def get_api_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        with translated(self._where):
            kid = await self._client.get(self._layout.api_key_hash(key_hash))
            if kid is None:
                return None
            found = text_hash(await self._client.hgetall(self._layout.api_key(text(kid))))
        return _api_key(found) if found else None

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        with translated(self._where):
            members = await self._client.zrange(self._layout.api_keys, 0, -1)
            async with self._client.pipeline(transaction=False) as pipe:
                for item in members:
                    pipe.hgetall(self._layout.api_key(member_id(item)))
                found = await pipe.execute()
        return [_api_key(text_hash(fields)) for fields in found if fields]

    async def revoke_api_key(self, key_id: ApiKeyId) -> ApiKeyRecord | None:
        return await self._set_api_key_time(key_id, "revoked_at", only_if_unset=True)

    async def touch_api_key(self, key_id: ApiKeyId) -> None:
        await self._set_api_key_time(key_id, "last_used_at", only_if_unset=False)

    async def _set_api_key_time(
        self, key_id: ApiKeyId, field: str, *, only_if_unset: bool
    ) -> ApiKeyRecord | None:
        kid = ids.parse_api_key_id(key_id)
        now = to_micros(self._clock.now())
        flat = await self._script(
            "UPDATE_API_KEY", [self._layout.api_key(kid)], field, now, int(only_if_unset)
        )
        return _api_key(text_hash(flat)) if flat else None


def _api_key(fields: dict[str, str]) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=ApiKeyId(fields["id"]),
        name=fields["name"],
        prefix=fields["prefix"],
        key_hash=fields["key_hash"],
        rpm=optional_int(fields, "rpm"),
        tpm=optional_int(fields, "tpm"),
        max_streams=optional_int(fields, "max_streams"),
        admin=fields["admin"] == "1",
        created_at=from_micros(int(fields["created_at"])),
        last_used_at=optional_time(fields, "last_used_at"),
        revoked_at=optional_time(fields, "revoked_at"),
    )
