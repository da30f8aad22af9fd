"""Shared fixtures: an environment for subprocesses that is isolated from the developer's."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The developer's settings, and variables that would send metrics or traces elsewhere.
ISOLATED_PREFIXES = ("AGENTHOST_", "OPENAI_", "OTEL_", "PROMETHEUS_MULTIPROC_DIR")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's AGENTHOST_/OPENAI_ variables or a stray .env file."""
    for key in list(os.environ):
        if key.startswith(ISOLATED_PREFIXES):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a child process: no AGENTHOST_/OPENAI_ variables, HOME in tmp."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(ISOLATED_PREFIXES)}
    env["HOME"] = str(tmp_path / "home")
    env["AGENTHOST_CACHE_DIR"] = str(Path.home() / ".cache" / "agenthost")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def python() -> str:
    return sys.executable
