"""The store across processes: concurrent appends, racing migrations, and kill -9 mid-turn."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agenthost.clock import ManualClock
from agenthost.errors import SessionBusyError
from agenthost.stores import RunId, SessionId, Store, StoredMessage, open_store, parse_session_id

from .turns import turn

pytestmark = pytest.mark.durable
WORKER = Path(__file__).with_name("store_worker.py")


@contextmanager
def worker(env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


async def read_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = await asyncio.to_thread(process.stdout.readline)
    if not line:
        _, err = await asyncio.to_thread(process.communicate, timeout=30)
        pytest.fail(f"the worker exited early:\n{err}")
    return line.strip()


async def whole_history(store: Store, session_id: SessionId) -> list[StoredMessage]:
    history: list[StoredMessage] = []
    while True:
        before = history[0].id if history else None
        page = await store.read_page(session_id, limit=500, before=before)
        if not page:
            return history
        history = page + history


async def assert_consistent(store: Store, session_id: SessionId) -> list[StoredMessage]:
    """Seqs 1..n without gaps, n is the session's count, and every finished run is whole."""
    history = await whole_history(store, session_id)
    session = await store.get_session(session_id)
    assert [m.seq for m in history] == list(range(1, session.message_count + 1))
    by_run: dict[RunId, list[str]] = {}
    for message in history:
        assert message.run_id is not None
        by_run.setdefault(message.run_id, []).append(message.message.role)
    for run_id, roles in by_run.items():
        run = await store.get_run(run_id)
        expected = ["user"] if run.status in ("running", "interrupted") else ["user", "assistant"]
        assert roles == expected, (run.status, roles)
    return history


async def test_concurrent_appends_from_several_processes(
    store_url: str, clean_env: dict[str, str]
) -> None:
    workers, turns = 3, 8
    async with open_store(store_url) as store:
        shared = await store.create_session(owner=None, agent="assistant")
    with (
        worker(clean_env, "append", store_url, shared.id, str(turns), "a") as a,
        worker(clean_env, "append", store_url, shared.id, str(turns), "b") as b,
        worker(clean_env, "append", store_url, shared.id, str(turns), "c") as c,
    ):
        own = [parse_session_id(await read_line(p)) for p in (a, b, c)]
        for process in (a, b, c):
            _, err = await asyncio.to_thread(process.communicate, timeout=50)
            assert process.returncode == 0, err
    async with open_store(store_url) as store:
        history = await assert_consistent(store, shared.id)
        assert len(history) == workers * turns * 2
        texts = [m.message.content for m in history]
        for name in "abc":  # each worker's turns, in its order, each question before its answer
            mine = [t for t in texts if t.startswith(f"{name}-")]
            assert mine == [t for i in range(turns) for t in (f"{name}-{i}", f"{name}-{i} reply")]
        for session_id in own:
            assert len(await assert_consistent(store, session_id)) == turns * 2
        assert (await store.get_session(shared.id)).total_tokens == workers * turns * 5


async def test_processes_racing_to_migrate_apply_each_migration_once(
    store_url: str, clean_env: dict[str, str]
) -> None:
    with (
        worker(clean_env, "upgrade", store_url) as a,
        worker(clean_env, "upgrade", store_url) as b,
        worker(clean_env, "upgrade", store_url) as c,
    ):
        outputs = []
        for process in (a, b, c):
            out, err = await asyncio.to_thread(process.communicate, timeout=50)
            assert process.returncode == 0, err
            outputs.append(out.strip())
    latest = "(1,)" if store_url.startswith("redis") else "(1, 2)"  # SQL: the knowledge tables
    assert sorted(outputs) == ["()", "()", latest]


async def test_kill_9_mid_turn_leaves_a_readable_session_that_recovers(
    store_url: str, clean_env: dict[str, str]
) -> None:
    clock = ManualClock(datetime.now(UTC))
    async with open_store(store_url, clock=clock) as store:
        session = await store.create_session(owner=None, agent="assistant")
        await turn(store, session.id, "before the crash", "fine")
        with worker(clean_env, "hold", store_url, session.id) as doomed:
            ready = await read_line(doomed)
            assert ready.startswith("ready")
            os.kill(doomed.pid, signal.SIGKILL)
            await asyncio.to_thread(doomed.wait, 30)
        run_id = RunId(ready.split()[1])
        # readable and consistent at once: the user's message is there, the reply is not
        history = await assert_consistent(store, session.id)
        assert [m.message.content for m in history] == [
            "before the crash",
            "fine",
            "are you there?",
        ]
        assert (await store.get_run(run_id)).status == "running"
        # the dead process's lease still counts until it expires ...
        with pytest.raises(SessionBusyError):
            await store.acquire_lease(session.id, "survivor", timedelta(seconds=30))
        assert await store.recover_interrupted() == 0
        # ... then the run is found running with an expired lease, and marked interrupted
        clock.advance(6)
        assert await store.recover_interrupted() == 1
        assert (await store.get_run(run_id)).status == "interrupted"
        done = await turn(store, session.id, "still there?", "yes")
        assert [m.seq for m in done.messages] == [5]
        await assert_consistent(store, session.id)


async def test_kill_9_while_writing_never_leaves_half_a_turn(
    store_url: str, clean_env: dict[str, str]
) -> None:
    clock = ManualClock(datetime.now(UTC))
    async with open_store(store_url, clock=clock) as store:
        session = await store.create_session(owner=None, agent="assistant")
        with worker(clean_env, "churn", store_url, session.id) as churner:
            for _ in range(15):
                await read_line(churner)
            await asyncio.sleep(random.uniform(0, 0.02))  # somewhere inside a later turn
            os.kill(churner.pid, signal.SIGKILL)
            await asyncio.to_thread(churner.wait, 30)
        history = await assert_consistent(store, session.id)
        assert len(history) >= 30
        clock.advance(6)
        await store.recover_interrupted()
        await turn(store, session.id)
        await assert_consistent(store, session.id)
