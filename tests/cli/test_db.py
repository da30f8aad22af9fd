"""``agenthost db upgrade``: applies migrations once, then finds nothing to do."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path


def test_db_upgrade_applies_migrations_once(
    python: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    command = [python, "-m", "agenthost", "db", "upgrade", "--database-url", url]
    first = subprocess.run(command, env=clean_env, capture_output=True, text=True, check=False)
    second = subprocess.run(command, env=clean_env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    assert "applied: 1" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "applied: none (already up to date)" in second.stdout
    with sqlite3.connect(tmp_path / "fresh.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"sessions", "messages", "runs"} <= tables


def test_db_upgrade_reports_a_bad_url_without_a_traceback(
    python: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    done = subprocess.run(
        [python, "-m", "agenthost", "db", "upgrade", "--database-url", "mysql://x/y"],
        env=clean_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "Unknown database URL scheme 'mysql'" in done.stderr
    assert "Traceback" not in done.stderr
