"""The store contract, sessions: create, read, list newest first, ownership, delete."""

from __future__ import annotations

import pytest

from agenthost.clock import ManualClock
from agenthost.errors import InvalidIdError, RunNotFoundError, SessionNotFoundError
from agenthost.stores import ANY_OWNER, ApiKeyId, RunId, SessionId, Store

from .turns import turn

ALICE = ApiKeyId("00000000-0000-4000-8000-00000000a11c")
BOB = ApiKeyId("00000000-0000-4000-8000-000000000b0b")


async def test_create_then_get_returns_the_same_session(store: Store, clock: ManualClock) -> None:
    created = await store.create_session(
        owner=ALICE, agent="assistant", title="Trip", metadata={"lang": "fr"}
    )
    found = await store.get_session(created.id)
    assert found == created
    assert found.owner == ALICE
    assert found.metadata == {"lang": "fr"}
    assert found.created_at == clock.now() == found.updated_at
    assert found.created_at.tzinfo is not None
    assert (found.message_count, found.total_tokens) == (0, 0)


async def test_get_unknown_session_is_not_found(store: Store) -> None:
    with pytest.raises(SessionNotFoundError):
        await store.get_session(SessionId("6f0c1f0e-7f55-4d7e-9a3c-6b7f3e1a2b3c"))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "nope",
        "1; DROP TABLE sessions",
        "6f0c1f0e7f554d7e9a3c6b7f3e1a2b3c",
        "6f0c1f0e-7f55-4d7e-9a3c-6b7f3e1a2b3",
    ],
)
async def test_malformed_ids_are_rejected_before_any_query(store: Store, bad: str) -> None:
    with pytest.raises(InvalidIdError):
        await store.get_session(SessionId(bad))
    with pytest.raises(InvalidIdError):
        await store.delete_session(SessionId(bad))
    with pytest.raises(InvalidIdError):
        await store.read_window(SessionId(bad), budget_tokens=10, max_messages=10)
    with pytest.raises(InvalidIdError):
        await store.get_run(RunId(bad))


async def test_sessions_of_another_owner_are_not_found(store: Store) -> None:
    mine = await store.create_session(owner=ALICE, agent="assistant")
    with pytest.raises(SessionNotFoundError):
        await store.get_session(mine.id, owner=BOB)
    with pytest.raises(SessionNotFoundError):
        await store.get_session(mine.id, owner=None)
    with pytest.raises(SessionNotFoundError):
        await store.delete_session(mine.id, owner=BOB)
    assert (await store.get_session(mine.id, owner=ALICE)).id == mine.id
    assert (await store.get_session(mine.id, owner=ANY_OWNER)).id == mine.id


async def test_list_is_newest_first_and_filtered_by_owner(store: Store, clock: ManualClock) -> None:
    alices = []
    for index in range(5):
        alices.append(await store.create_session(owner=ALICE, agent="assistant", title=f"a{index}"))
        await store.create_session(owner=BOB, agent="assistant")
        await store.create_session(owner=None, agent="assistant")
        clock.advance(1)
    page = await store.list_sessions(owner=ALICE, limit=10)
    assert [s.id for s in page.sessions] == [s.id for s in reversed(alices)]
    assert page.next_cursor is None
    assert all(s.owner is None for s in (await store.list_sessions(owner=None)).sessions)
    assert len((await store.list_sessions(owner=ANY_OWNER, limit=100)).sessions) == 15
    assert await store.count_sessions() == 15


async def test_list_pages_with_a_cursor_without_gaps_or_repeats(
    store: Store, clock: ManualClock
) -> None:
    created = []
    for index in range(7):
        created.append(await store.create_session(owner=ALICE, agent="assistant"))
        if index % 3:  # some share a timestamp: the id breaks the tie
            clock.advance(0.5)
    seen, cursor = [], None
    while True:
        page = await store.list_sessions(owner=ALICE, limit=3, cursor=cursor)
        seen += [s.id for s in page.sessions]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    expected = sorted(created, key=lambda s: (s.created_at, s.id), reverse=True)
    assert seen == [s.id for s in expected]


async def test_a_forged_cursor_is_rejected(store: Store) -> None:
    with pytest.raises(InvalidIdError):
        await store.list_sessions(owner=ALICE, cursor="not-a-cursor!")


async def test_delete_removes_the_session_its_history_and_runs(store: Store) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    done = await turn(store, session.id)
    other = await store.create_session(owner=None, agent="assistant")
    await turn(store, other.id)
    await store.delete_session(session.id)
    with pytest.raises(SessionNotFoundError):
        await store.get_session(session.id)
    with pytest.raises(SessionNotFoundError):
        await store.read_page(session.id)
    with pytest.raises(RunNotFoundError):
        await store.get_run(done.run.id)
    with pytest.raises(SessionNotFoundError):
        await store.delete_session(session.id)
    assert [s.id for s in (await store.list_sessions(owner=None)).sessions] == [other.id]
    assert len(await store.read_page(other.id)) == 2
    assert await store.count_sessions() == 1
