"""The Redis key layout's versions.

Redis has no schema to alter: a version names a key layout (documented in
``stores/redis.py``). A future layout change adds an entry here and a step in
the Redis store that rewrites the keys it changes; version 1 needs no step.
"""

from __future__ import annotations

from agenthost.stores.migrations import Migration

REDIS_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "sessions, message lists, runs, leases, idempotency keys, API keys"),
)
