"""Schema migrations: an ordered list per backend, applied at startup and by ``upgrade``.

Each backend keeps the versions it has applied (``schema_migrations``) and applies
the missing ones in order, under a lock, so several processes starting at once
apply each migration exactly once. A database that has a version this code does
not know was written by newer code: we refuse to touch it (``SchemaVersionError``)
rather than guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agenthost.errors import SchemaVersionError


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a database's schema stands: its version, and what this call applied."""

    backend: str
    version: int
    applied: tuple[int, ...]


def pending(
    applied: Iterable[int], migrations: Sequence[Migration], *, backend: str, migrate: bool
) -> list[Migration]:
    """The migrations still to apply, in order.

    Raises ``SchemaVersionError`` when the database is newer than this code, or
    when it is older and ``migrate`` is off.
    """
    done = set(applied)
    latest = max((m.version for m in migrations), default=0)
    newer = sorted(v for v in done if v > latest)
    if newer:
        raise SchemaVersionError(
            f"The {backend} database has schema version {newer[-1]}, newer than this "
            f"agenthost knows ({latest}). Upgrade agenthost, or point it at another database."
        )
    todo = [m for m in migrations if m.version not in done]
    if todo and not migrate:
        raise SchemaVersionError(
            f"The {backend} database schema is out of date (missing version "
            f"{todo[0].version}). Run `agenthost db upgrade`."
        )
    return todo


def status_after(
    backend: str, applied: Iterable[int], done_now: Sequence[Migration]
) -> SchemaStatus:
    versions = [*applied, *(m.version for m in done_now)]
    return SchemaStatus(backend, max(versions, default=0), tuple(m.version for m in done_now))
