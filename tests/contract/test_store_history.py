"""The store contract, history: order, atomic turns, window reads and pages."""

from __future__ import annotations

import pytest

from agenthost.clock import ManualClock
from agenthost.errors import InvalidIdError, SessionBusyError, SessionNotFoundError
from agenthost.messages import Message, ToolCall, ToolCallId, Usage
from agenthost.stores import MessageId, NewMessage, SessionId, Store

from .turns import LEASE, turn, user


async def test_turns_are_stored_in_order_with_contiguous_seqs(
    store: Store, clock: ManualClock
) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    for index in range(5):
        clock.advance(1)
        await turn(store, session.id, f"question {index}", f"answer {index}")
    history = await store.read_page(session.id, limit=500)
    assert [m.seq for m in history] == list(range(1, 11))
    assert [m.message.content for m in history[:4]] == [
        "question 0",
        "answer 0",
        "question 1",
        "answer 1",
    ]
    assert [m.message.role for m in history] == ["user", "assistant"] * 5
    assert len({m.id for m in history}) == 10
    record = await store.get_session(session.id)
    assert record.message_count == 10
    assert record.total_tokens == 5 * 10
    assert record.updated_at == clock.now()


async def test_a_turn_with_tool_calls_round_trips_exactly(store: Store) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    lease = await store.acquire_lease(session.id, "h", LEASE)
    started = await store.begin_turn(session.id, user("weather in Paris?"), lease=lease, model="m")
    call = ToolCall(ToolCallId("call_1"), "weather", '{"city": "Paris"}')
    produced = [
        NewMessage(Message.assistant("", tool_calls=(call,)), tokens=12),
        NewMessage(Message.tool("18°C, ☀️", tool_call_id=call.id, name="weather"), tokens=5),
        NewMessage(Message.assistant("  It is 18°C.\n\nSunny 🌞 "), tokens=9),
    ]
    done = await store.complete_turn(started.run.id, produced, usage=Usage(40, 20))
    assert [m.seq for m in done.messages] == [2, 3, 4]
    assert all(m.run_id == started.run.id for m in done.messages)
    stored = await store.read_page(session.id)
    assert [m.message for m in stored] == [started.message.message] + [p.message for p in produced]
    assert [m.tokens for m in stored[1:]] == [12, 5, 9]
    assert stored == [started.message, *done.messages]


async def test_a_rejected_completion_writes_nothing(store: Store) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    done = await turn(store, session.id)
    with pytest.raises(SessionBusyError):
        await store.complete_turn(done.run.id, [user("late")], usage=Usage(1, 1))
    assert len(await store.read_page(session.id)) == 2
    assert (await store.get_session(session.id)).message_count == 2


async def test_window_is_the_newest_tail_that_fits_oldest_first(store: Store) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    lease = await store.acquire_lease(session.id, "h", LEASE)
    started = await store.begin_turn(
        session.id, NewMessage(Message.user("m1"), 10), lease=lease, model="m"
    )
    sizes = [20, 30, 5, 5, 40]
    await store.complete_turn(
        started.run.id,
        [NewMessage(Message.assistant(f"m{i + 2}"), n) for i, n in enumerate(sizes)],
        usage=Usage(),
    )
    window = await store.read_window(session.id, budget_tokens=49, max_messages=100)
    assert [m.message.content for m in window] == ["m5", "m6"]
    window = await store.read_window(session.id, budget_tokens=50, max_messages=100)
    assert [m.message.content for m in window] == ["m4", "m5", "m6"]
    window = await store.read_window(session.id, budget_tokens=80, max_messages=100)
    assert [m.message.content for m in window] == ["m3", "m4", "m5", "m6"]
    window = await store.read_window(session.id, budget_tokens=1000, max_messages=4)
    assert [m.seq for m in window] == [3, 4, 5, 6]
    assert await store.read_window(session.id, budget_tokens=39, max_messages=10) == []
    assert await store.read_window(session.id, budget_tokens=0, max_messages=10) == []


async def test_window_stops_at_the_first_message_that_does_not_fit(store: Store) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    lease = await store.acquire_lease(session.id, "h", LEASE)
    started = await store.begin_turn(
        session.id, NewMessage(Message.user("small"), 1), lease=lease, model="m"
    )
    await store.complete_turn(
        started.run.id,
        [NewMessage(Message.assistant("huge"), 100), NewMessage(Message.assistant("tiny"), 1)],
        usage=Usage(),
    )
    window = await store.read_window(session.id, budget_tokens=10, max_messages=10)
    assert [m.message.content for m in window] == ["tiny"]  # never skips over "huge"


async def test_window_of_an_empty_or_unknown_session(store: Store) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    assert await store.read_window(session.id, budget_tokens=100, max_messages=10) == []
    with pytest.raises(SessionNotFoundError):
        await store.read_window(
            SessionId("0b9d8f3e-2c4a-4e6b-8d1f-3a5c7e9b1d2f"), budget_tokens=10, max_messages=10
        )


async def test_pages_walk_back_with_before(store: Store) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    for index in range(6):
        await turn(store, session.id, f"q{index}", f"a{index}")
    newest = await store.read_page(session.id, limit=5)
    assert [m.seq for m in newest] == [8, 9, 10, 11, 12]
    older = await store.read_page(session.id, limit=5, before=newest[0].id)
    assert [m.seq for m in older] == [3, 4, 5, 6, 7]
    oldest = await store.read_page(session.id, limit=5, before=older[0].id)
    assert [m.seq for m in oldest] == [1, 2]
    assert await store.read_page(session.id, limit=5, before=oldest[0].id) == []


async def test_before_must_be_a_message_of_that_session(store: Store) -> None:
    first = await store.create_session(owner=None, agent="assistant")
    second = await store.create_session(owner=None, agent="assistant")
    await turn(store, first.id)
    other = (await store.read_page(first.id))[0]
    with pytest.raises(InvalidIdError):
        await store.read_page(second.id, before=other.id)
    with pytest.raises(InvalidIdError):
        await store.read_page(second.id, before=MessageId("latest"))
    with pytest.raises(ValueError, match="limit"):
        await store.read_page(second.id, limit=0)


async def test_a_large_window_is_read_whole_and_in_order(store: Store) -> None:
    session = await store.create_session(owner=None, agent="assistant")
    lease = await store.acquire_lease(session.id, "h", LEASE)
    started = await store.begin_turn(
        session.id, NewMessage(Message.user("m1"), 1), lease=lease, model="m"
    )
    rest = [NewMessage(Message.assistant(f"m{i}"), 1) for i in range(2, 301)]
    await store.complete_turn(started.run.id, rest, usage=Usage())
    window = await store.read_window(session.id, budget_tokens=1000, max_messages=250)
    assert [m.seq for m in window] == list(range(51, 301))
    window = await store.read_window(session.id, budget_tokens=170, max_messages=1000)
    assert [m.seq for m in window] == list(range(131, 301))
    window = await store.read_window(session.id, budget_tokens=10_000, max_messages=10_000)
    assert [m.message.content for m in window] == [f"m{i}" for i in range(1, 301)]
