"""How records become columns and back: times as microseconds, messages and metadata as JSON.

Messages go through ``message_to_dict`` / ``message_from_dict`` (the project's
one serialiser); a stored body that no longer parses is a bug or a corrupt row,
and is reported as such rather than passed on half-read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from agenthost.messages import Message, message_from_dict, message_to_dict

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch; exact, sortable, and cheap to index."""
    if moment.tzinfo is None:
        raise ValueError("store times must be timezone-aware")
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def optional_micros(moment: datetime | None) -> int | None:
    return None if moment is None else to_micros(moment)


def optional_from_micros(micros: int | None) -> datetime | None:
    return None if micros is None else from_micros(micros)


def encode_message(message: Message) -> str:
    return json.dumps(message_to_dict(message), ensure_ascii=False, separators=(",", ":"))


def decode_message(body: str) -> Message:
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("a stored message must be a JSON object")
    return message_from_dict(data)


def encode_metadata(metadata: Mapping[str, str] | None) -> str:
    return json.dumps(dict(metadata or {}), ensure_ascii=False, separators=(",", ":"))


def decode_metadata(raw: str) -> dict[str, str]:
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("stored session metadata must be a JSON object")
    return {str(key): str(value) for key, value in data.items()}


def check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """A copy of ``metadata`` once it is known to map strings to strings."""
    checked = dict(metadata or {})
    for key, value in checked.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError("session metadata maps strings to strings")
    return checked
