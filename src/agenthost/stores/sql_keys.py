"""API keys and idempotency keys in SQL: the half of ``SQLSessionStore`` about keys.

A base class rather than a second store, so that one database and one pool
serve both seams; it also holds what both halves share.
"""

from __future__ import annotations

from datetime import datetime

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
from agenthost.stores.sql_database import (
    DuplicateKeyError,
    Row,
    SQLConnection,
    SQLDatabase,
    read_optional_time,
    read_time,
)

_KEY = (
    "id, name, prefix, key_hash, rpm, tpm, max_streams, admin, created_at, last_used_at, revoked_at"
)


class SQLKeys:
    def __init__(self, db: SQLDatabase, *, clock: Clock, options: StoreOptions) -> None:
        self._db = db
        self._clock = clock
        self._options = options

    @property
    def backend(self) -> str:
        return self._db.backend

    # -- idempotency ---------------------------------------------------------------

    async def put_idempotency(
        self, owner: Owner, key: str, fingerprint: str, run_id: RunId
    ) -> IdempotencyRecord:
        owner, key = ids.check_owner(owner), ids.check_idempotency_key(key)
        rid = ids.parse_run_id(run_id)
        now = self._clock.now()
        expires = now + self._options.idempotency_ttl
        t = self._db.time
        async with self._db.write() as c:
            await c.execute("DELETE FROM idempotency_keys WHERE expires_at <= ?", t(now))
            inserted = await c.fetchone(
                "INSERT INTO idempotency_keys (owner, key, fingerprint, run_id, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (owner, key) DO NOTHING"
                " RETURNING key",
                owner or "",
                key,
                fingerprint,
                rid,
                t(now),
                t(expires),
            )
            if inserted is not None:
                return IdempotencyRecord(owner, key, fingerprint, rid, now, expires)
            existing = await self._idempotency(c, owner, key, fingerprint, now)
        if existing is None:  # deleted between our statements: the caller may retry
            raise idempotency_conflict()
        return existing

    async def get_idempotency(
        self, owner: Owner, key: str, *, fingerprint: str
    ) -> IdempotencyRecord | None:
        owner, key = ids.check_owner(owner), ids.check_idempotency_key(key)
        async with self._db.read() as c:
            return await self._idempotency(c, owner, key, fingerprint, self._clock.now())

    async def _idempotency(
        self, c: SQLConnection, owner: Owner, key: str, fingerprint: str, now: datetime
    ) -> IdempotencyRecord | None:
        row = await c.fetchone(
            "SELECT fingerprint, run_id, created_at, expires_at FROM idempotency_keys"
            " WHERE owner = ? AND key = ? AND expires_at > ?",
            owner or "",
            key,
            self._db.time(now),
        )
        if row is None:
            return None
        if row[0] != fingerprint:
            raise idempotency_conflict()
        return IdempotencyRecord(
            owner, key, row[0], RunId(str(row[1])), read_time(row[2]), read_time(row[3])
        )

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
        sql = f"INSERT INTO api_keys ({_KEY}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)"
        async with self._db.write() as c:
            try:
                await c.execute(
                    sql,
                    record.id,
                    name,
                    prefix,
                    key_hash,
                    rpm,
                    tpm,
                    max_streams,
                    admin,
                    self._db.time(record.created_at),
                )
            except DuplicateKeyError:
                raise ValueError("an API key with this hash already exists") from None
        return record

    async def get_api_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        async with self._db.read() as c:
            row = await c.fetchone(f"SELECT {_KEY} FROM api_keys WHERE key_hash = ?", key_hash)
        return None if row is None else _api_key(row)

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        async with self._db.read() as c:
            rows = await c.fetchall(f"SELECT {_KEY} FROM api_keys ORDER BY created_at, id")
        return [_api_key(row) for row in rows]

    async def revoke_api_key(self, key_id: ApiKeyId) -> ApiKeyRecord | None:
        kid = ids.parse_api_key_id(key_id)
        async with self._db.write() as c:
            row = await c.fetchone(
                f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?"
                f" RETURNING {_KEY}",
                self._db.time(self._clock.now()),
                kid,
            )
        return None if row is None else _api_key(row)

    async def touch_api_key(self, key_id: ApiKeyId) -> None:
        kid = ids.parse_api_key_id(key_id)
        async with self._db.write() as c:
            await c.execute(
                "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
                self._db.time(self._clock.now()),
                kid,
            )


def _api_key(row: Row) -> ApiKeyRecord:
    kid, name, prefix, key_hash, rpm, tpm, streams, admin, created, used, revoked = row
    return ApiKeyRecord(
        id=ApiKeyId(str(kid)),
        name=name,
        prefix=prefix,
        key_hash=key_hash,
        rpm=rpm,
        tpm=tpm,
        max_streams=streams,
        admin=bool(admin),
        created_at=read_time(created),
        last_used_at=read_optional_time(used),
        revoked_at=read_optional_time(revoked),
    )
