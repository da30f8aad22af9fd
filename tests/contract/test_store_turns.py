"""The store contract, turns: run lifecycle, the busy lease, crash and stop recovery."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest

from agenthost.clock import ManualClock
from agenthost.errors import (
    InvalidIdError,
    RunNotFoundError,
    SessionBusyError,
    SessionNotFoundError,
)
from agenthost.messages import Usage
from agenthost.stores import INTERRUPTED_ERROR, RunId, Store, new_run_id

from .turns import LEASE, assistant, turn, user


async def test_begin_stores_the_user_message_before_the_reply(
    store: Store, clock: ManualClock
) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    lease = await store.acquire_lease(session.id, "worker-1", LEASE)
    started = await store.begin_turn(session.id, user("hello"), lease=lease, model="test")
    assert started.run.status == "running"
    assert started.run.finished_at is None
    assert started.message.seq == 1
    assert started.message.run_id == started.run.id
    assert [m.message.content for m in await store.read_page(session.id)] == ["hello"]
    assert await store.get_run(started.run.id) == started.run
    assert (await store.get_session(session.id)).message_count == 1


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled", "interrupted"])
async def test_complete_finishes_the_run_with_its_status(
    store: Store, clock: ManualClock, status: str
) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    lease = await store.acquire_lease(session.id, "worker-1", LEASE)
    started = await store.begin_turn(session.id, user("hello"), lease=lease, model="test-model")
    clock.advance(2)
    error = None if status == "completed" else f"stopped: {status}"
    done = await store.complete_turn(
        started.run.id,
        [assistant("partial repl")],
        usage=Usage(11, 4),
        status=status,  # type: ignore[arg-type]
        error=error,
    )
    run = await store.get_run(started.run.id)
    assert run == done.run
    assert (run.status, run.error, run.model, run.usage) == (
        status,
        error,
        "test-model",
        Usage(11, 4),
    )
    assert run.finished_at == clock.now()
    assert run.started_at == started.run.started_at
    assert done.session.total_tokens == 15
    assert [m.message.content for m in await store.read_page(session.id)] == [
        "hello",
        "partial repl",
    ]


async def test_a_run_cannot_finish_twice(store: Store) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    done = await turn(store, session.id)
    with pytest.raises(SessionBusyError):
        await store.complete_turn(done.run.id, [], usage=Usage(), status="failed")
    assert (await store.get_run(done.run.id)).status == "completed"


async def test_complete_checks_its_arguments(store: Store) -> None:
    with pytest.raises(RunNotFoundError):
        await store.complete_turn(new_run_id(), [], usage=Usage())
    with pytest.raises(InvalidIdError):
        await store.complete_turn(RunId("run-1"), [], usage=Usage())
    with pytest.raises(ValueError, match="running"):
        await store.complete_turn(new_run_id(), [], usage=Usage(), status="running")  # type: ignore[arg-type]


async def test_begin_accepts_a_run_id_chosen_by_the_caller(store: Store) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    lease = await store.acquire_lease(session.id, "w", LEASE)
    run_id = new_run_id()
    started = await store.begin_turn(session.id, user("hi"), lease=lease, model="m", run_id=run_id)
    assert started.run.id == run_id
    await store.complete_turn(run_id, [], usage=Usage())
    with pytest.raises(ValueError, match="run id"):
        await store.begin_turn(session.id, user("again"), lease=lease, model="m", run_id=run_id)


async def test_a_held_lease_makes_the_session_busy(store: Store, clock: ManualClock) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    lease = await store.acquire_lease(session.id, "worker-1", LEASE)
    assert lease.expires_at == clock.now() + LEASE
    with pytest.raises(SessionBusyError):
        await store.acquire_lease(session.id, "worker-2", LEASE)
    with pytest.raises(SessionBusyError):
        await store.acquire_lease(session.id, "worker-1", LEASE)  # even for the same holder
    await store.release_lease(lease)
    again = await store.acquire_lease(session.id, "worker-2", LEASE)
    assert again.token != lease.token


async def test_complete_can_give_the_lease_back_in_the_same_step(store: Store) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    other = await store.create_session(owner=None, agent="assistant")
    lease = await store.acquire_lease(session.id, "worker-1", LEASE)
    others_lease = await store.acquire_lease(other.id, "worker-1", LEASE)
    started = await store.begin_turn(session.id, user("hello"), lease=lease, model="test")
    done = await store.complete_turn(
        started.run.id, [assistant("hi")], usage=Usage(1, 1), release=lease
    )
    assert done.run.status == "completed"
    again = await store.acquire_lease(session.id, "worker-2", LEASE)  # free at once
    assert again.token != lease.token
    with pytest.raises(SessionBusyError):  # another session's lease is no business of it
        await store.acquire_lease(other.id, "worker-2", LEASE)
    await store.release_lease(others_lease)


async def test_complete_leaves_a_lease_that_is_no_longer_the_holders(
    store: Store, clock: ManualClock
) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    lease = await store.acquire_lease(session.id, "worker-1", LEASE)
    first = await store.begin_turn(session.id, user("hello"), lease=lease, model="test")
    await store.complete_turn(first.run.id, [assistant("hi")], usage=Usage(1, 1))
    clock.advance(LEASE.total_seconds() + 1)  # expired, then taken over
    taken = await store.acquire_lease(session.id, "worker-2", LEASE)
    second = await store.begin_turn(session.id, user("again"), lease=taken, model="test")
    with pytest.raises(SessionBusyError):  # the first run finished: nothing is written
        await store.complete_turn(first.run.id, [], usage=Usage(), release=lease)
    await store.complete_turn(second.run.id, [], usage=Usage(), release=lease)  # stale token
    with pytest.raises(SessionBusyError):  # the new holder's lease is still in place
        await store.acquire_lease(session.id, "worker-3", LEASE)
    await store.release_lease(taken)
    await store.acquire_lease(session.id, "worker-3", LEASE)


async def test_renew_extends_a_live_lease(store: Store, clock: ManualClock) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    lease = await store.acquire_lease(session.id, "w", timedelta(seconds=10))
    clock.advance(8)
    renewed = await store.renew_lease(lease, timedelta(seconds=10))
    assert renewed.expires_at == clock.now() + timedelta(seconds=10)
    clock.advance(8)  # past the first expiry, within the renewed one
    with pytest.raises(SessionBusyError):
        await store.acquire_lease(session.id, "other", LEASE)


async def test_one_reply_at_a_time_even_under_one_lease(store: Store) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    lease = await store.acquire_lease(session.id, "w", LEASE)
    await store.begin_turn(session.id, user("one"), lease=lease, model="m")
    with pytest.raises(SessionBusyError):
        await store.begin_turn(session.id, user("two"), lease=lease, model="m")
    assert len(await store.read_page(session.id)) == 1


async def test_begin_needs_the_sessions_live_lease(store: Store, clock: ManualClock) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    other = await store.create_session(owner=None, agent="assistant")
    lease = await store.acquire_lease(session.id, "w", timedelta(seconds=5))
    with pytest.raises(SessionBusyError):
        await store.begin_turn(other.id, user("hi"), lease=lease, model="m")
    await store.release_lease(lease)
    with pytest.raises(SessionBusyError):
        await store.begin_turn(session.id, user("hi"), lease=lease, model="m")
    lease = await store.acquire_lease(session.id, "w", timedelta(seconds=5))
    clock.advance(5)
    with pytest.raises(SessionBusyError):
        await store.begin_turn(session.id, user("hi"), lease=lease, model="m")
    with pytest.raises(SessionBusyError):
        await store.renew_lease(lease, LEASE)
    assert await store.read_page(session.id) == []


async def test_an_expired_lease_is_taken_over_and_its_run_interrupted(
    store: Store, clock: ManualClock
) -> None:
    """What happens after kill -9: nobody releases, the lease runs out, the next turn recovers."""
    session = await store.create_session(owner=None, agent="assistant")
    crashed = await store.acquire_lease(session.id, "dead-worker", timedelta(seconds=30))
    started = await store.begin_turn(session.id, user("hello?"), lease=crashed, model="m")
    clock.advance(29)
    with pytest.raises(SessionBusyError):
        await store.acquire_lease(session.id, "new-worker", LEASE)
    clock.advance(1)
    taken = await store.acquire_lease(session.id, "new-worker", LEASE)
    run = await store.get_run(started.run.id)
    assert (run.status, run.error, run.finished_at) == (
        "interrupted",
        INTERRUPTED_ERROR,
        clock.now(),
    )
    # the dead worker's lease is gone for good
    with pytest.raises(SessionBusyError):
        await store.renew_lease(crashed, LEASE)
    with pytest.raises(SessionBusyError):
        await store.complete_turn(started.run.id, [assistant("too late")], usage=Usage())
    await store.release_lease(crashed)  # a no-op: it does not free the new holder's lease
    with pytest.raises(SessionBusyError):
        await store.acquire_lease(session.id, "third", LEASE)
    # and the session goes on
    next_turn = await store.begin_turn(session.id, user("hello again"), lease=taken, model="m")
    await store.complete_turn(next_turn.run.id, [assistant("hi")], usage=Usage(1, 1))
    history = await store.read_page(session.id)
    assert [m.message.content for m in history] == ["hello?", "hello again", "hi"]
    assert [m.seq for m in history] == [1, 2, 3]


async def test_recover_interrupted_marks_runs_whose_lease_expired(
    store: Store, clock: ManualClock
) -> None:
    live = await store.create_session(owner=None, agent="assistant")
    dead = await store.create_session(owner=None, agent="assistant")
    live_lease = await store.acquire_lease(live.id, "a", timedelta(seconds=60))
    dead_lease = await store.acquire_lease(dead.id, "b", timedelta(seconds=10))
    live_run = await store.begin_turn(live.id, user("x"), lease=live_lease, model="m")
    dead_run = await store.begin_turn(dead.id, user("y"), lease=dead_lease, model="m")
    assert await store.recover_interrupted() == 0
    clock.advance(11)
    assert await store.recover_interrupted() == 1
    assert (await store.get_run(dead_run.run.id)).status == "interrupted"
    assert (await store.get_run(live_run.run.id)).status == "running"
    assert await store.recover_interrupted() == 0


async def test_mark_interrupted_on_graceful_stop(store: Store) -> None:
    mine = await store.create_session(owner=None, agent="assistant")
    idle = await store.create_session(owner=None, agent="assistant")
    theirs = await store.create_session(owner=None, agent="assistant")
    my_lease = await store.acquire_lease(mine.id, "stopping-worker", LEASE)
    await store.acquire_lease(idle.id, "stopping-worker", LEASE)
    their_lease = await store.acquire_lease(theirs.id, "other-worker", LEASE)
    my_run = await store.begin_turn(mine.id, user("a"), lease=my_lease, model="m")
    their_run = await store.begin_turn(theirs.id, user("b"), lease=their_lease, model="m")
    assert await store.mark_interrupted("stopping-worker") == 1
    assert (await store.get_run(my_run.run.id)).status == "interrupted"
    assert (await store.get_run(their_run.run.id)).status == "running"
    # its leases are free again, the other worker's is not
    await store.acquire_lease(mine.id, "next", LEASE)
    await store.acquire_lease(idle.id, "next", LEASE)
    with pytest.raises(SessionBusyError):
        await store.acquire_lease(theirs.id, "next", LEASE)


async def test_deleting_a_session_mid_turn(store: Store) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    lease = await store.acquire_lease(session.id, "w", LEASE)
    started = await store.begin_turn(session.id, user("hi"), lease=lease, model="m")
    await store.delete_session(session.id)
    with pytest.raises(RunNotFoundError):
        await store.complete_turn(started.run.id, [assistant("bye")], usage=Usage())
    with pytest.raises(SessionNotFoundError):
        await store.acquire_lease(session.id, "w", LEASE)
    await store.release_lease(lease)


async def test_cancelled_calls_leave_the_store_consistent_and_usable(
    store: Store, clock: ManualClock
) -> None:
    """A client hanging up cancels the request's task, at any await inside the store."""
    session = await store.create_session(owner=None, agent="assistant")
    for steps in range(0, 40, 3):
        task = asyncio.create_task(turn(store, session.id, f"q{steps}", f"a{steps}"))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SessionBusyError):
            await task
        clock.advance(60)  # whatever lease the cancelled turn kept runs out
    await store.recover_interrupted()
    await turn(store, session.id, "after", "all good")
    history = await store.read_page(session.id, limit=500)
    assert [m.seq for m in history] == list(range(1, len(history) + 1))
    assert (await store.get_session(session.id)).message_count == len(history)
    assert [m.message.content for m in history[-2:]] == ["after", "all good"]
