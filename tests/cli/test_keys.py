"""``agenthost keys``: the key is printed once, only its hash is stored, revoke by prefix."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from agenthost.auth.keys import hash_key, well_formed


def keys(
    python: str, env: dict[str, str], cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "agenthost", "keys", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_create_list_and_revoke(python: str, clean_env: dict[str, str], tmp_path: Path) -> None:
    env = {**clean_env, "AGENTHOST_DATABASE_URL": f"sqlite:///{tmp_path}/keys.db"}
    created = keys(python, env, tmp_path, "create", "--name", "web app", "--rpm", "30", "--admin")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert well_formed(secret)
    assert "cannot be shown again" in created.stderr

    with sqlite3.connect(tmp_path / "keys.db") as db:
        stored = db.execute("SELECT prefix, key_hash FROM api_keys").fetchall()
        dump = "\n".join(db.iterdump())
    assert stored == [(secret[:12], hash_key(secret))]
    assert secret not in dump

    listed = keys(python, env, tmp_path, "list").stdout
    assert secret not in listed
    row = listed.splitlines()[1].split()
    assert row[0] == secret[:12]
    assert "30" in row
    assert row[-1] == "active"

    revoked = keys(python, env, tmp_path, "revoke", secret[:12])
    assert revoked.returncode == 0, revoked.stderr
    assert keys(python, env, tmp_path, "list").stdout.splitlines()[1].endswith("revoked")
    missing = keys(python, env, tmp_path, "revoke", "ah_nothing")
    assert missing.returncode == 1
    assert "no key with id or prefix 'ah_nothing'" in missing.stderr
