"""Durable sessions: the ``SessionStore`` seam, its backends, and choosing one by URL.

Use ``open_store(url)`` (an async context manager) from the composition root;
``upgrade(url)`` applies schema migrations (``agenthost db upgrade``). Importing
this package imports no database driver: each backend's driver is loaded when a
URL for it is opened.
"""

from agenthost.stores.base import (
    ANY_OWNER,
    INTERRUPTED_ERROR,
    AnyOwner,
    ApiKeyId,
    ApiKeyRecord,
    ApiKeyStore,
    CompletedTurn,
    FinalRunStatus,
    IdempotencyRecord,
    Lease,
    MessageId,
    NewMessage,
    Owner,
    OwnerFilter,
    RunId,
    RunRecord,
    RunStatus,
    SessionId,
    SessionPage,
    SessionRecord,
    SessionStore,
    StartedTurn,
    Store,
    StoredMessage,
    StoreOptions,
    TakeLease,
)
from agenthost.stores.ids import (
    new_run_id,
    parse_api_key_id,
    parse_message_id,
    parse_run_id,
    parse_session_id,
)
from agenthost.stores.memory import MemorySessionStore
from agenthost.stores.migrations import SchemaStatus
from agenthost.stores.url import DEFAULT_DATABASE_URL, open_store, redact_url, upgrade

__all__ = [
    "ANY_OWNER",
    "DEFAULT_DATABASE_URL",
    "INTERRUPTED_ERROR",
    "AnyOwner",
    "ApiKeyId",
    "ApiKeyRecord",
    "ApiKeyStore",
    "CompletedTurn",
    "FinalRunStatus",
    "IdempotencyRecord",
    "Lease",
    "MemorySessionStore",
    "MessageId",
    "NewMessage",
    "Owner",
    "OwnerFilter",
    "RunId",
    "RunRecord",
    "RunStatus",
    "SchemaStatus",
    "SessionId",
    "SessionPage",
    "SessionRecord",
    "SessionStore",
    "StartedTurn",
    "Store",
    "StoreOptions",
    "StoredMessage",
    "TakeLease",
    "new_run_id",
    "open_store",
    "parse_api_key_id",
    "parse_message_id",
    "parse_run_id",
    "parse_session_id",
    "redact_url",
    "upgrade",
]
