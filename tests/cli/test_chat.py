"""``agenthost chat`` with piped input: one message per line, one reply each, exit at EOF."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.local_questions import BERLIN


def run_chat(
    python: str, env: dict[str, str], cwd: Path, stdin: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "agenthost", "chat", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_piped_chat_prints_one_reply_per_line(
    python: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    stdin = 'hello there\n\n/call calculator {"expression": "2**8"}\nbye\n'
    done = run_chat(python, clean_env, tmp_path, stdin, "--model", "test")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ("You said: hello there\ncalculator returned: 256\nYou said: bye\n")


def test_chat_reports_configuration_errors_without_a_traceback(
    python: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    done = run_chat(python, clean_env, tmp_path, "hi\n", "--model", "nope")
    assert done.returncode == 1
    assert "Unknown model id 'nope'" in done.stderr
    assert "Traceback" not in done.stderr
    done = run_chat(python, clean_env, tmp_path, "hi\n", "--model", "test", "--agent", "ghost")
    assert done.returncode == 1
    assert "Agent not found: 'ghost'" in done.stderr


def test_chat_reads_the_model_from_the_environment(
    python: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    done = run_chat(python, {**clean_env, "AGENTHOST_MODEL": "test"}, tmp_path, "ping\n")
    assert done.stdout == "You said: ping\n"


@pytest.mark.local_model
def test_piped_chat_answers_with_the_embedded_model(
    python: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    stdin = f"{BERLIN}\n"
    done = run_chat(python, clean_env, tmp_path, stdin, "--model", "local", "--temperature", "0")
    assert done.returncode == 0, done.stderr
    assert "Berlin" in done.stdout
    assert done.stdout.count("\n") == 1


def test_serve_refuses_an_unknown_model_without_a_traceback(
    python: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    done = subprocess.run(
        [python, "-m", "agenthost", "serve", "--port", "1", "--model", "bogus"],
        env=clean_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Unknown model id 'bogus'" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
