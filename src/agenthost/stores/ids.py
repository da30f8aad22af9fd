"""Ids and cursors: making them, and checking what callers hand us before any query.

Every id is a UUID in its canonical form (lowercase, hyphenated). Anything else is
rejected with ``InvalidIdError`` before a backend sees it, so a malformed id never
costs a query, and never reaches SQL or a Redis key.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
from datetime import datetime
from typing import Final

from agenthost.errors import InvalidIdError
from agenthost.stores.base import (
    AnyOwner,
    ApiKeyId,
    MessageId,
    Owner,
    OwnerFilter,
    RunId,
    SessionId,
)
from agenthost.stores.encoding import from_micros, to_micros

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
MAX_PAGE: Final = 500


class _RandomIds:
    """Random (version 4) UUIDs from the OS's random source, read 4 KiB at a time.

    ``uuid.uuid4()`` reads 16 bytes with a system call per id, and a request
    makes several ids; the bytes are the same kind, only read in bulk. A forked
    child drops the bytes it inherited, so parent and child never share an id.
    """

    _BATCH = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()  # ingestion makes ids in worker threads
        self._pool = b""
        self._used = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._pool, self._used = b"", 0

    def raw(self) -> bytes:
        """16 random bytes, with a version 4 UUID's version and variant bits."""
        with self._lock:
            if self._used + 16 > len(self._pool):
                self._pool, self._used = os.urandom(self._BATCH), 0
            raw = bytearray(self._pool[self._used : self._used + 16])
            self._used += 16
        raw[6] = (raw[6] & 0x0F) | 0x40
        raw[8] = (raw[8] & 0x3F) | 0x80
        return bytes(raw)

    def __call__(self) -> str:
        # What str(uuid.UUID(bytes=raw)) gives, without building the UUID object.
        h = self.raw().hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_random_ids = _RandomIds()


def new_id() -> str:
    """A random UUID, canonical form."""
    return _random_ids()


def new_hex_id() -> str:
    """A random UUID as 32 hex digits (``uuid.uuid4().hex``), e.g. a request id."""
    return _random_ids.raw().hex()


def new_session_id() -> SessionId:
    return SessionId(new_id())


def new_run_id() -> RunId:
    return RunId(new_id())


def _uuid(value: object, what: str) -> str:
    if not isinstance(value, str) or _UUID.fullmatch(value) is None:
        raise InvalidIdError(f"Invalid {what}: expected a UUID")
    return value.lower()


def parse_session_id(value: str) -> SessionId:
    return SessionId(_uuid(value, "session id"))


def parse_run_id(value: str) -> RunId:
    return RunId(_uuid(value, "run id"))


def parse_message_id(value: str) -> MessageId:
    return MessageId(_uuid(value, "message id"))


def parse_api_key_id(value: str) -> ApiKeyId:
    return ApiKeyId(_uuid(value, "API key id"))


def check_owner(owner: Owner) -> Owner:
    return None if owner is None else parse_api_key_id(owner)


def check_owner_filter(owner: OwnerFilter) -> OwnerFilter:
    return owner if isinstance(owner, AnyOwner) else check_owner(owner)


def owner_matches(owner_filter: OwnerFilter, owner: Owner) -> bool:
    return isinstance(owner_filter, AnyOwner) or owner_filter == owner


def check_idempotency_key(key: str) -> str:
    """Printable ASCII, 1 to 255 characters (what Stripe and the IETF draft allow)."""
    if not isinstance(key, str) or _IDEMPOTENCY_KEY.fullmatch(key) is None:
        raise InvalidIdError("Invalid Idempotency-Key: use 1 to 255 printable ASCII characters")
    return key


def check_limit(limit: int, *, maximum: int = MAX_PAGE) -> int:
    if not 1 <= limit <= maximum:
        raise ValueError(f"limit must be between 1 and {maximum}")
    return limit


def encode_cursor(created_at: datetime, session_id: SessionId) -> str:
    """An opaque cursor: the (created_at, id) of the last session on a page."""
    raw = f"{to_micros(created_at)}:{session_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, SessionId]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        micros, _, raw_id = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        return from_micros(int(micros)), parse_session_id(raw_id)
    except (ValueError, OverflowError, binascii.Error, InvalidIdError) as error:
        raise InvalidIdError("Invalid cursor: pass back a next_cursor you were given") from error
