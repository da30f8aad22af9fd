"""The store contract: ``begin_turn`` taking the session's lease in the same step."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from agenthost.clock import ManualClock
from agenthost.errors import SessionBusyError, SessionNotFoundError
from agenthost.messages import Usage
from agenthost.stores import INTERRUPTED_ERROR, SessionId, Store, TakeLease

from .turns import LEASE, assistant, user

TAKE = TakeLease("worker-1", LEASE)


async def test_begin_takes_the_lease_stores_the_message_and_opens_the_run(
    store: Store, clock: ManualClock
) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    started = await store.begin_turn(session.id, user("hello"), lease=TAKE, model="test")
    lease = started.lease
    assert (lease.session_id, lease.holder, lease.expires_at) == (
        session.id,
        "worker-1",
        clock.now() + LEASE,
    )
    assert started.run.status == "running"
    assert started.message.seq == 1
    assert [m.message.content for m in await store.read_page(session.id)] == ["hello"]
    with pytest.raises(SessionBusyError):  # the lease is held
        await store.acquire_lease(session.id, "worker-2", LEASE)
    with pytest.raises(SessionBusyError):
        await store.begin_turn(
            session.id, user("again"), lease=TakeLease("worker-2", LEASE), model="m"
        )
    renewed = await store.renew_lease(lease, LEASE)  # it is a real lease: renewed, given back
    done = await store.complete_turn(
        started.run.id, [assistant("hi")], usage=Usage(1, 1), release=renewed
    )
    assert done.run.status == "completed"
    await store.release_lease(await store.acquire_lease(session.id, "worker-2", LEASE))


async def test_a_live_lease_of_another_holder_refuses_it_and_nothing_is_written(
    store: Store, clock: ManualClock
) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    other = await store.acquire_lease(session.id, "worker-2", LEASE)
    clock.advance(29)
    with pytest.raises(SessionBusyError):
        await store.begin_turn(session.id, user("hello"), lease=TAKE, model="test")
    assert (await store.get_session(session.id)).message_count == 0
    assert await store.read_page(session.id) == []
    assert (await store.renew_lease(other, LEASE)).token == other.token  # still the other's


async def test_an_expired_lease_is_taken_over_and_its_run_interrupted(
    store: Store, clock: ManualClock
) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    crashed = await store.begin_turn(
        session.id, user("hello?"), lease=TakeLease("dead-worker", timedelta(seconds=30)), model="m"
    )
    clock.advance(30)
    taken = await store.begin_turn(session.id, user("hello again"), lease=TAKE, model="m")
    run = await store.get_run(crashed.run.id)
    assert (run.status, run.error, run.finished_at) == (
        "interrupted",
        INTERRUPTED_ERROR,
        clock.now(),
    )
    with pytest.raises(SessionBusyError):  # the dead worker's lease is gone for good
        await store.renew_lease(crashed.lease, LEASE)
    await store.complete_turn(
        taken.run.id, [assistant("hi")], usage=Usage(1, 1), release=taken.lease
    )
    history = await store.read_page(session.id)
    assert [m.message.content for m in history] == ["hello?", "hello again", "hi"]


async def test_a_refused_turn_does_not_take_the_lease(store: Store) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    first = await store.begin_turn(session.id, user("one"), lease=TAKE, model="m")
    await store.complete_turn(first.run.id, [assistant("1")], usage=Usage(), release=first.lease)
    with pytest.raises(ValueError, match="run id"):  # a run id already used
        await store.begin_turn(session.id, user("two"), lease=TAKE, model="m", run_id=first.run.id)
    with pytest.raises(ValueError, match="ttl"):
        await store.begin_turn(
            session.id, user("two"), lease=TakeLease("w", timedelta(0)), model="m"
        )
    with pytest.raises(SessionNotFoundError):
        await store.begin_turn(SessionId(str(uuid.uuid4())), user("x"), lease=TAKE, model="m")
    free = await store.acquire_lease(session.id, "worker-2", LEASE)  # nobody took it
    await store.release_lease(free)
    assert (await store.get_session(session.id)).message_count == 2


async def test_a_lease_taken_with_the_caller_s_token_can_be_given_back_by_it(
    store: Store,
) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    token = str(uuid.uuid4())
    started = await store.begin_turn(
        session.id, user("hello"), lease=TakeLease("worker-1", LEASE, token), model="m"
    )
    assert started.lease.token == token
    # what the caller knows without the reply: the session, the holder and the token
    await store.release_lease(replace(started.lease, expires_at=started.run.started_at))
    await store.release_lease(await store.acquire_lease(session.id, "worker-2", LEASE))
