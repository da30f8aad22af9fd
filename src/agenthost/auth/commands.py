"""``agenthost keys``: create, list and revoke API keys in the configured store."""

from __future__ import annotations

from dataclasses import dataclass

from agenthost.auth.keys import generate_key
from agenthost.clock import SystemClock
from agenthost.errors import ConfigurationError
from agenthost.settings import Settings
from agenthost.stores.base import ApiKeyId, ApiKeyRecord
from agenthost.stores.ids import parse_api_key_id
from agenthost.stores.url import open_store


@dataclass(frozen=True, slots=True)
class CreatedKey:
    secret: str
    record: ApiKeyRecord


async def create_key(
    settings: Settings,
    *,
    name: str,
    rpm: int | None,
    tpm: int | None,
    max_streams: int | None,
    admin: bool,
) -> CreatedKey:
    if not name.strip() or len(name) > 100:
        raise ConfigurationError("a key needs a name of 1 to 100 characters")
    new = generate_key()
    async with open_store(
        settings.database_url, clock=SystemClock(), options=settings.store_options()
    ) as store:
        record = await store.create_api_key(
            name=name.strip(),
            prefix=new.prefix,
            key_hash=new.key_hash,
            rpm=rpm,
            tpm=tpm,
            max_streams=max_streams,
            admin=admin,
        )
    return CreatedKey(new.secret, record)


async def list_keys(settings: Settings) -> list[ApiKeyRecord]:
    async with open_store(settings.database_url, options=settings.store_options()) as store:
        return await store.list_api_keys()


async def revoke_key(settings: Settings, key: str) -> ApiKeyRecord:
    """Revoke by id or by shown prefix (which must match exactly one key)."""
    async with open_store(settings.database_url, options=settings.store_options()) as store:
        keys = await store.list_api_keys()
        matches = [k for k in keys if key in (k.id, k.prefix)]
        if len(matches) != 1:
            found = "no key" if not matches else f"{len(matches)} keys"
            raise ConfigurationError(
                f"{found} with id or prefix {key!r}; see `agenthost keys list`"
            )
        record = await store.revoke_api_key(ApiKeyId(parse_api_key_id(matches[0].id)))
    if record is None:  # pragma: no cover - it was just listed
        raise ConfigurationError(f"no key {key!r}")
    return record
