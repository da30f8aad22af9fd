"""What the Redis store keeps where, and how its documents turn back into records.

Key layout (``P`` is the prefix, ``agenthost`` unless the URL says ``?prefix=``):

    P:session:<sid>       hash   owner, agent, title, times, counters, metadata, running run
    P:messages:<sid>      list   one JSON document per message; seq = index + 1
    P:message-seq:<sid>   hash   message id -> seq (for ``before=`` pages)
    P:lease:<sid>         hash   holder, token, expires_at
    P:runs:<sid>          set    the session's run ids (to delete them with it)
    P:run:<rid>           hash   session_id, status, model, usage, error, times
    P:running             set    runs still running (crash recovery)
    P:holder:<holder>     set    sessions a holder has leased (graceful stop)
    P:owner:<owner|->     zset   "<created_at:020d>:<sid>", all scores 0: newest first by lex order
    P:sessions            zset   the same members, for every owner
    P:idempotency:<owner|->:<key>  hash, expiring
    P:api-key:<kid> hash · P:api-key-hash:<sha256> string · P:api-keys zset
    P:schema              hash   applied migration versions

Appending is RPUSH and a window is LRANGE from the tail: both O(window). Times
are microseconds since the epoch. Nothing expires unless
``StoreOptions.redis_ttl`` is set.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agenthost.messages import Usage, message_from_dict, message_to_dict
from agenthost.stores import ids
from agenthost.stores.base import (
    MessageId,
    NewMessage,
    Owner,
    RunId,
    RunRecord,
    SessionId,
    SessionRecord,
    StoredMessage,
)
from agenthost.stores.encoding import decode_metadata, from_micros, optional_from_micros
from agenthost.stores.rules import run_status


@dataclass(frozen=True, slots=True)
class Layout:
    prefix: str

    def session(self, sid: SessionId) -> str:
        return f"{self.prefix}:session:{sid}"

    def messages(self, sid: SessionId) -> str:
        return f"{self.prefix}:messages:{sid}"

    def message_seq(self, sid: SessionId) -> str:
        return f"{self.prefix}:message-seq:{sid}"

    def run(self, rid: RunId) -> str:
        return f"{self.prefix}:run:{rid}"

    def owner(self, owner: Owner) -> str:
        return f"{self.prefix}:owner:{owner or '-'}"

    @property
    def sessions(self) -> str:
        return f"{self.prefix}:sessions"

    def idempotency(self, owner: Owner, key: str) -> str:
        return f"{self.prefix}:idempotency:{owner or '-'}:{key}"

    def api_key(self, kid: str) -> str:
        return f"{self.prefix}:api-key:{kid}"

    def api_key_hash(self, key_hash: str) -> str:
        return f"{self.prefix}:api-key-hash:{key_hash}"

    @property
    def api_keys(self) -> str:
        return f"{self.prefix}:api-keys"

    @property
    def schema(self) -> str:
        return f"{self.prefix}:schema"


def member(created_micros: int, item_id: str) -> str:
    """A sorted-set member that sorts by creation time, then id."""
    return f"{created_micros:020d}:{item_id}"


def member_id(item: object) -> str:
    return text(item).split(":", 1)[1]


def text(value: object) -> str:
    """A reply from the client (created with ``decode_responses``) as the ``str`` it is."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string from Redis, got {type(value).__name__}")
    return value


def integer(value: object) -> int:
    """An integer reply (scripts return numbers as integers, hashes as strings)."""
    if isinstance(value, int | str):
        return int(value)
    raise TypeError(f"expected an integer from Redis, got {type(value).__name__}")


def text_hash(value: object) -> dict[str, str]:
    """A hash from HGETALL, or from a script (a flat [field, value, ...] list)."""
    if isinstance(value, Mapping):
        return {text(k): text(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        flat = [text(item) for item in value]
        return dict(zip(flat[::2], flat[1::2], strict=True))
    raise TypeError(f"expected a hash from Redis, got {type(value).__name__}")


def optional_int(fields: Mapping[str, str], name: str) -> int | None:
    value = fields.get(name)
    return None if value is None or value == "" else int(value)


def optional_time(fields: Mapping[str, str], name: str) -> datetime | None:
    return optional_from_micros(optional_int(fields, name))


def message_doc(mid: MessageId, new: NewMessage, rid: RunId, created: int) -> str:
    return json.dumps(
        {"id": mid, "m": message_to_dict(new.message), "t": new.tokens, "r": rid, "c": created},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def message_from_doc(sid: SessionId, seq: int, doc: str) -> StoredMessage:
    return message_from_data(sid, seq, json.loads(doc))


def message_from_data(sid: SessionId, seq: int, data: dict[str, Any]) -> StoredMessage:
    """A message from its parsed JSON document (see ``message_doc``)."""
    return StoredMessage(
        id=MessageId(data["id"]),
        session_id=sid,
        seq=seq,
        message=message_from_dict(data["m"]),
        tokens=int(data["t"]),
        run_id=None if data.get("r") is None else RunId(data["r"]),
        created_at=from_micros(int(data["c"])),
    )


SESSION_FIELDS = (
    "owner",
    "agent",
    "title",
    "created_at",
    "updated_at",
    "message_count",
    "total_tokens",
    "metadata",
)


def session_from_hash(sid: SessionId, fields: Mapping[str, str]) -> SessionRecord:
    owner = fields["owner"]
    return SessionRecord(
        id=sid,
        owner=ids.parse_api_key_id(owner) if owner else None,
        agent=fields["agent"],
        title=fields["title"],
        created_at=from_micros(int(fields["created_at"])),
        updated_at=from_micros(int(fields["updated_at"])),
        message_count=int(fields["message_count"]),
        total_tokens=int(fields["total_tokens"]),
        metadata=decode_metadata(fields["metadata"]),
    )


def run_from_hash(rid: RunId, fields: Mapping[str, str]) -> RunRecord:
    return RunRecord(
        id=rid,
        session_id=SessionId(fields["session_id"]),
        status=run_status(fields["status"]),
        model=fields["model"],
        usage=Usage(int(fields["prompt_tokens"]), int(fields["completion_tokens"])),
        error=fields.get("error"),
        started_at=from_micros(int(fields["started_at"])),
        finished_at=optional_time(fields, "finished_at"),
    )
