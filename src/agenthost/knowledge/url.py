"""Opening the knowledge index that a database URL names: beside the sessions, or in memory.

``sqlite:///`` and ``postgresql://`` keep the knowledge bases in the same
database as the sessions (tables from the stores' migrations). ``memory://``
keeps them in the process. Redis has no full-text search: with a ``redis://``
URL the index is kept in memory too, per process, which serves the shipped docs
(synced at every start); documents of your own need a SQL database, which
``AGENTHOST_KNOWLEDGE_DATABASE_URL`` can name beside a Redis session store.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from agenthost.clock import Clock, SystemClock
from agenthost.errors import KnowledgeError
from agenthost.knowledge.base import KnowledgeIndex
from agenthost.knowledge.memory import MemoryKnowledgeIndex
from agenthost.stores.base import StoreOptions
from agenthost.stores.url import _require, backend_of, sqlite_path

logger = logging.getLogger(__name__)


def is_persistent(url: str) -> bool:
    """Whether knowledge bases at ``url`` outlive the process (a SQL database)."""
    return backend_of(url) in ("sqlite", "postgres")


def require_persistent(url: str) -> None:
    """Refuse, with what to do, to ingest into an index that would vanish with the process."""
    if not is_persistent(url):
        raise KnowledgeError(
            f"Knowledge bases are kept in a SQL database, and a {backend_of(url)} store is not "
            "one: set AGENTHOST_KNOWLEDGE_DATABASE_URL (or AGENTHOST_DATABASE_URL) to a "
            "sqlite:/// or postgresql:// URL"
        )


@asynccontextmanager
async def open_knowledge_index(
    url: str, *, clock: Clock | None = None, options: StoreOptions | None = None
) -> AsyncIterator[KnowledgeIndex]:
    clock = clock or SystemClock()
    options = options or StoreOptions()
    match backend_of(url):
        case "memory":
            yield MemoryKnowledgeIndex(clock=clock)
        case "redis":
            logger.info(
                "knowledge is kept in memory with a Redis store: only the shipped docs are "
                "searchable (set AGENTHOST_KNOWLEDGE_DATABASE_URL to a SQL database for yours)"
            )
            yield MemoryKnowledgeIndex(clock=clock)
        case "sqlite":
            from agenthost.knowledge.sqlite import open_sqlite_index

            async with open_sqlite_index(sqlite_path(url), clock=clock, options=options) as index:
                yield index
        case "postgres":
            _require("asyncpg", "postgres")
            from agenthost.knowledge.postgres import open_postgres_index

            async with open_postgres_index(url, clock=clock, options=options) as pg_index:
                yield pg_index
