"""API keys: how they look, how they are stored, and who a request comes from.

A key is ``ah_`` followed by 43 URL-safe characters (256 random bits). Only its
SHA-256 is stored, with a 12-character prefix to show in listings and logs; the
key itself is printed once, when it is created. SHA-256 without a salt is the
right tool here: the secret is random and long, so there is nothing to guess.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from agenthost.stores.base import ApiKeyId, ApiKeyRecord

KEY_PREFIX = "ah_"
SHOWN_PREFIX_CHARS = 12
_KEY_SHAPE = re.compile(r"^ah_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True, slots=True)
class NewKey:
    secret: str
    prefix: str
    key_hash: str


@dataclass(frozen=True, slots=True)
class Limits:
    """A caller's limits; ``None`` or 0 means no limit of that kind."""

    rpm: int | None = None
    tpm: int | None = None
    max_streams: int | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key, or (auth off) an anonymous client by address."""

    key_id: ApiKeyId | None
    name: str
    prefix: str | None
    admin: bool
    limits: Limits
    client: str

    @property
    def limit_identity(self) -> str:
        """What limits are counted against: the key, or the client address without auth."""
        return f"key:{self.key_id}" if self.key_id else f"ip:{self.client}"


def generate_key() -> NewKey:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    return NewKey(secret=secret, prefix=secret[:SHOWN_PREFIX_CHARS], key_hash=hash_key(secret))


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def well_formed(secret: str) -> bool:
    return bool(_KEY_SHAPE.match(secret))


def principal_for(record: ApiKeyRecord, *, client: str, defaults: Limits) -> Principal:
    return Principal(
        key_id=record.id,
        name=record.name,
        prefix=record.prefix,
        admin=record.admin,
        limits=Limits(
            rpm=record.rpm if record.rpm is not None else defaults.rpm,
            tpm=record.tpm if record.tpm is not None else defaults.tpm,
            max_streams=record.max_streams
            if record.max_streams is not None
            else defaults.max_streams,
        ),
        client=client,
    )
