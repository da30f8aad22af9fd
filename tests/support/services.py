"""The real PostgreSQL and Redis on loopback: where they are, and requiring them.

Under ``CI=true`` a service that is not listening fails the test; elsewhere the
test is skipped with the reason.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"


def postgres_base() -> str:
    return os.environ.get("STORE_TEST_POSTGRES_URL", POSTGRES_URL)


def redis_base() -> str:
    return os.environ.get("STORE_TEST_REDIS_URL", REDIS_URL)


def require_service(name: str, url: str) -> None:
    """Fail (under CI) or skip (elsewhere) when the server behind ``url`` is not listening."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 2):
            return
    except OSError as error:
        reason = f"{name} is not reachable at {parts.hostname}:{parts.port} ({error})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: CI must run every test against the real services")
    pytest.skip(f"{reason}: start it to run these tests")
