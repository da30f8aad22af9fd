"""What a log line is about: the request, session, run and API key, as context variables.

Middleware and the run manager set these; the log formatter reads them, so no
call site has to pass ids around. A run's task copies the context of the
request that started it, then sets its own run and session ids.
"""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
session_id: ContextVar[str | None] = ContextVar("session_id", default=None)
run_id: ContextVar[str | None] = ContextVar("run_id", default=None)
key_prefix: ContextVar[str | None] = ContextVar("key_prefix", default=None)


def snapshot() -> dict[str, object]:
    """The ids that are set, for a log record (a new dict, the caller's to extend)."""
    ids: dict[str, object] = {}
    if (value := request_id.get()) is not None:
        ids["request_id"] = value
    if (value := session_id.get()) is not None:
        ids["session_id"] = value
    if (value := run_id.get()) is not None:
        ids["run_id"] = value
    if (value := key_prefix.get()) is not None:
        ids["key_prefix"] = value
    return ids
