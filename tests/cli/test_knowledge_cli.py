"""``agenthost ingest`` and ``agenthost kb``: in a subprocess, on a SQLite file in tmp."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.documents import write_corpus


def run(
    python: str, env: dict[str, str], cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "agenthost", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_ingest_list_and_remove(python: str, clean_env: dict[str, str], tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus")
    env = {**clean_env, "AGENTHOST_DATABASE_URL": "sqlite:///./kb.db"}
    first = run(python, env, tmp_path, "ingest", "corpus", "--kb", "pets")
    assert first.returncode == 0, first.stderr
    assert "pets: 4 added, 0 updated, 0 unchanged, 0 removed, 0 failed" in first.stdout
    again = run(python, env, tmp_path, "ingest", "corpus", "--kb", "pets")
    assert "0 added, 0 updated, 4 unchanged" in again.stdout
    (tmp_path / "corpus" / "bread.txt").write_text("Rye bread is dense.\n")
    changed = run(python, env, tmp_path, "ingest", "corpus", "--kb", "pets")
    assert "0 added, 1 updated, 3 unchanged" in changed.stdout

    bases = run(python, env, tmp_path, "kb", "list")
    assert bases.returncode == 0, bases.stderr
    [line] = [row for row in bases.stdout.splitlines() if row.startswith("pets")]
    assert line.split()[1] == "4"
    documents = run(python, env, tmp_path, "kb", "list", "pets")
    assert "corpus/telescope.pdf" in documents.stdout
    assert "Telescope manual" in documents.stdout

    one = run(python, env, tmp_path, "kb", "remove", "pets", "--source", "corpus/bread.txt")
    assert "pets: removed 1 document(s)" in one.stdout
    rest = run(python, env, tmp_path, "kb", "remove", "pets")
    assert "pets: removed 3 document(s)" in rest.stdout
    assert "pets" not in run(python, env, tmp_path, "kb", "list").stdout


def test_ingest_reports_bad_files_and_memory_stores_clearly(
    python: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "corpus")
    (tmp_path / "corpus" / "broken.pdf").write_bytes(b"%PDF-1.4 nothing")
    env = {**clean_env, "AGENTHOST_DATABASE_URL": "sqlite:///./kb.db"}
    partial = run(python, env, tmp_path, "ingest", "corpus")
    assert partial.returncode == 1
    assert "skipped corpus/broken.pdf: not a readable PDF" in partial.stderr
    assert "default: 4 added" in partial.stdout

    memory = {**clean_env, "AGENTHOST_DATABASE_URL": "memory://"}
    refused = run(python, memory, tmp_path, "ingest", "corpus")
    assert refused.returncode == 1
    assert "Knowledge bases are kept in a SQL database" in refused.stderr
    assert "Traceback" not in refused.stderr
