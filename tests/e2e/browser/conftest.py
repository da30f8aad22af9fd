"""Browser tests: the chat page in Debian's chromium, headless, driven by Playwright.

The page talks to real ``agenthost serve`` processes on the ``test:slow`` model
(it echoes "You said: <message>" at 50 ms a word, slow enough to stop or cut a
reply mid-way), each with its own SQLite file: one without keys and with a
second agent, one with ``AGENTHOST_AUTH=keys`` and a key made by
``agenthost keys create``. Playwright's own browser download does not work on
these machines; ``make test`` installs chromium with apt-get when it is
missing. Without chromium these tests skip, except under ``CI=true``, where
they fail. Screenshots go to ``test-artifacts/web/``.

Playwright's sync API leaves its event loop marked as running in this thread
while it is open, so it lives for this package only: the async tests that run
after it get a thread with no loop running.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.support.process import ServerProcess, serve

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts" / "web"
CHROMIUM = "/usr/bin/chromium"
VIEWPORT: ViewportSize = {"width": 1200, "height": 800}

expect.set_options(timeout=15_000)


@dataclass
class Keyed:
    server: ServerProcess
    key: str


@dataclass
class PageProblems:
    """What went wrong inside the page: uncaught errors and CSP violations."""

    errors: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.errors.append(f"console: {message.text}")


def chromium_path() -> str | None:
    found = shutil.which("chromium")
    if found:
        return found
    return CHROMIUM if Path(CHROMIUM).exists() else None


def server_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AGENTHOST_", "OPENAI_"))
    }
    env.update(
        HOME=str(tmp / "home"),
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
        AGENTHOST_DATABASE_URL=f"sqlite:///{tmp}/agenthost.db",
        AGENTHOST_CACHE_DIR=str(tmp / "cache"),
        AGENTHOST_RATE_LIMIT_RPM="0",  # every test's browser comes from 127.0.0.1
        **extra,
    )
    return env


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        message = "chromium is not installed (`make test` installs it with apt-get)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=path, args=["--no-sandbox"], headless=True
        )
        yield launched
        launched.close()


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("page-server")
    env = server_env(tmp, AGENTHOST_AGENTS='["tests.e2e.browser.agents:FAQ"]')
    with serve(env, tmp, "--model", "test:slow") as process:
        yield process


@pytest.fixture(scope="package")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    tmp = tmp_path_factory.mktemp("keyed-server")
    env = server_env(tmp, AGENTHOST_AUTH="keys")
    created = subprocess.run(
        [sys.executable, "-m", "agenthost", "keys", "create", "--name", "browser"],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    found = re.search(r"ah_[A-Za-z0-9_-]{43}", created.stdout)
    assert found, created.stdout + created.stderr
    with serve(env, tmp, "--model", "test:slow") as process:
        yield Keyed(process, found[0])


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser: Browser, problems: PageProblems) -> Iterator[Page]:
    """A fresh browser context (empty storage) at desktop size; fails on page errors."""
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    opened.on("pageerror", lambda error: problems.errors.append(f"pageerror: {error}"))
    opened.on("console", problems.console)
    yield opened
    context.close()
    assert problems.errors == []


def shoot(page: Page, name: str) -> None:
    """Save a screenshot of the page's state as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", animations="disabled")
