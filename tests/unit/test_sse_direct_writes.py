"""A response following a live run: the events are written without waking its task.

The response's own task sends the first events, then sleeps while each new
event is taken as it is appended: the first of a turn of the event loop is
written at once, by the task that appends it (the run's); those appended later
in the same turn are joined and written at its end, from a loop callback. The
response's task wakes for the final event, for an idle ping, and for a send
that cannot finish at once (a slow client), after which the events are its own
again. Nothing is lost or reordered either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from starlette.types import Message, Scope

from agenthost.runs.events import RunEvent
from agenthost.runs.log import MemoryRunEventLog
from agenthost.server.access import BODY_SEND
from agenthost.server.sse import event_stream
from tests.support.sse import parse

RUN = "run-1"
SCOPE: Scope = {"type": "http", "asgi": {"spec_version": "2.3"}}


class Client:
    """The ASGI server's side of one response: what was sent, from where, and a gate."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.senders: list[asyncio.Task[object] | None] = []  # the task of each body send
        self.open = asyncio.Event()
        self.open.set()
        self.hold_at: int | None = None  # the body message (1-based) whose send waits for ``open``
        self.fail_at: int | None = None
        self.gone = asyncio.Event()

    @property
    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            number = len(self.bodies) + 1
            self.senders.append(asyncio.current_task())
            if number == self.fail_at:
                raise OSError("the socket broke")
            if number == self.hold_at:
                self.open.clear()
                self.hold_at = None
        await self.open.wait()
        self.sent.append(message)

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}


def token(seq: int, text: str) -> RunEvent:
    return RunEvent(seq, "token", text)


def framed(*events: RunEvent) -> bytes:
    return b"".join(
        b"id: %d\nevent: %s\ndata: %s\n\n" % (e.seq, e.kind.encode(), e.data.encode())
        for e in events
    )


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(2):
        while not condition():
            await asyncio.sleep(0.001)


async def started(
    log: MemoryRunEventLog,
    client: Client,
    idle: float | None = None,
    scope: Scope = SCOPE,
    run: str = RUN,
) -> asyncio.Task[None]:
    log.open(run)
    log.append(run, RunEvent(1, "session", "s"))
    response = event_stream(log.follow(run, idle_timeout=idle), retry_ms=1000)
    task = asyncio.create_task(response(scope, client.receive, client.send))
    await until(lambda: len(client.bodies) == 1)  # retry hint and session event
    await asyncio.sleep(0.01)  # the response has attached its writer
    return task


def text_of(client: Client) -> str:
    events = parse(b"".join(client.bodies).decode()).events
    return "".join(e.data for e in events if e.event == "token")


async def test_events_go_out_without_the_responses_task_and_the_final_one_ends_the_body() -> None:
    log, client = MemoryRunEventLog(), Client()
    response = await started(log, client)
    log.append(RUN, token(2, "Hel"))  # the first of this turn: written within append
    assert client.bodies[-1] == framed(token(2, "Hel"))
    log.append(RUN, token(3, "lo"))
    log.append(RUN, token(4, " you"))  # later in the same turn: joined, one write at its end
    assert len(client.bodies) == 2
    await asyncio.sleep(0)
    assert client.bodies[-1] == framed(token(3, "lo"), token(4, " you"))
    assert client.senders[0] is response  # the first write is the response task's
    assert client.senders[1:] == [asyncio.current_task(), None]  # the appender's, a callback's
    await asyncio.sleep(0)  # a later turn: at once again
    log.append(RUN, token(5, "!"))
    assert client.bodies[-1] == framed(token(5, "!"))
    log.append(RUN, RunEvent(6, "done", "9"))
    await asyncio.wait_for(response, 2)
    assert client.sent[-1] == {
        "type": "http.response.body",
        "body": framed(RunEvent(6, "done", "9")),
        "more_body": False,
    }
    assert client.senders[-1] is response
    assert text_of(client) == "Hello you!"


async def test_every_responses_first_event_of_a_turn_goes_out_at_once() -> None:
    log, one, two = MemoryRunEventLog(), Client(), Client()
    first = await started(log, one)
    second = await started(log, two, run="run-2")
    log.append(RUN, token(2, "a"))
    log.append("run-2", token(2, "b"))  # the same turn, another response: not joined
    assert (one.bodies[-1], two.bodies[-1]) == (framed(token(2, "a")), framed(token(2, "b")))
    log.append(RUN, RunEvent(3, "done", "0"))
    log.append("run-2", RunEvent(3, "done", "0"))
    await asyncio.wait_for(asyncio.gather(first, second), 2)


async def test_events_taken_before_the_final_one_are_written_before_it() -> None:
    log, client = MemoryRunEventLog(), Client()
    response = await started(log, client)
    log.append(RUN, token(2, "a"))
    log.append(RUN, RunEvent(3, "done", "0"))  # same turn: "a" is taken, not yet written
    await asyncio.wait_for(response, 2)
    assert client.bodies[1:] == [framed(token(2, "a")), framed(RunEvent(3, "done", "0"))]


async def test_a_send_that_must_wait_is_finished_by_the_response_and_nothing_is_reordered() -> None:
    log, client = MemoryRunEventLog(), Client()
    response = await started(log, client)
    client.hold_at = 3  # the second direct write waits, as for a full socket buffer
    log.append(RUN, token(2, "a"))
    await asyncio.sleep(0)
    log.append(RUN, token(3, "b"))
    await asyncio.sleep(0)
    for seq in range(4, 40):  # the run goes on meanwhile: these wait in the log
        log.append(RUN, token(seq, str(seq)))
        await asyncio.sleep(0)
    assert len(client.sent) == 3  # the start, the session event and "a"
    assert client.senders[2] is asyncio.current_task()  # the held send was the run side's
    client.open.set()
    await until(lambda: len(client.bodies) >= 4)
    assert client.senders[3] is response  # the events after it: the response's own
    log.append(RUN, token(40, "!"))
    log.append(RUN, RunEvent(41, "done", "0"))
    await asyncio.wait_for(response, 2)
    assert text_of(client) == "ab" + "".join(str(n) for n in range(4, 40)) + "!"
    seqs = [int(e.id) for e in parse(b"".join(client.bodies).decode()).events if e.id]
    assert seqs == list(range(1, 42))


async def test_a_failing_send_fails_the_response_not_the_run() -> None:
    log, client = MemoryRunEventLog(), Client()
    response = await started(log, client)
    client.fail_at = 2
    log.append(RUN, token(2, "a"))  # its write raises within append, but not out of it
    log.append(RUN, token(3, "b"))
    with pytest.raises(OSError, match="the socket broke"):
        await asyncio.wait_for(response, 2)
    assert client.senders[1] is asyncio.current_task()  # the send that broke: a direct write
    log.append(RUN, token(4, "c"))
    log.append(RUN, RunEvent(5, "done", "0"))  # the run still ends normally
    assert [e.seq for e in [e async for e in log.follow(RUN) if e]] == [1, 2, 3, 4, 5]


async def test_an_idle_run_gets_pings_between_direct_writes() -> None:
    log, client = MemoryRunEventLog(), Client()
    response = await started(log, client, idle=0.05)
    await until(lambda: b": ping\n\n" in client.bodies)
    log.append(RUN, token(2, "late"))
    await asyncio.sleep(0)
    assert client.bodies[-1] == framed(token(2, "late"))
    assert client.senders[-1] is asyncio.current_task()  # direct again after the ping
    await until(lambda: client.bodies.count(b": ping\n\n") >= 2)
    log.append(RUN, RunEvent(3, "done", "0"))
    await asyncio.wait_for(response, 2)
    assert text_of(client) == "late"


async def test_a_client_that_leaves_mid_send_detaches_and_the_run_goes_on() -> None:
    log, client = MemoryRunEventLog(), Client()
    response = await started(log, client)
    client.hold_at = 2
    log.append(RUN, token(2, "a"))  # this send waits forever: the client is gone
    await asyncio.sleep(0)
    assert client.senders[1] is asyncio.current_task()  # a direct write holds
    client.gone.set()
    await asyncio.wait_for(response, 2)  # ends quietly, as for any disconnect
    for seq in range(3, 10):
        log.append(RUN, token(seq, "x"))  # nobody writes these, nothing raises
        await asyncio.sleep(0)
    log.append(RUN, RunEvent(10, "done", "0"))
    assert len(client.sent) == 2  # the start and the session event


async def test_a_resumed_follower_reads_what_it_missed_before_writing_directly() -> None:
    log, client = MemoryRunEventLog(), Client()
    log.open(RUN)
    for seq in range(1, 6):
        log.append(RUN, token(seq, str(seq)))
    response = event_stream(log.follow(RUN, after=2), retry_ms=1000)
    task = asyncio.create_task(response(SCOPE, client.receive, client.send))
    await until(lambda: len(client.bodies) == 1)  # 3, 4 and 5 in one write
    await asyncio.sleep(0.01)
    log.append(RUN, token(6, "6"))
    await asyncio.sleep(0)
    assert client.bodies[-1] == framed(token(6, "6"))
    assert client.senders[-1] is asyncio.current_task()
    log.append(RUN, RunEvent(7, "done", "0"))
    await asyncio.wait_for(task, 2)
    assert text_of(client) == "3456"


async def test_direct_writes_skip_the_layers_inside_the_access_middleware() -> None:
    # The route's ``send`` passes through layers that watch only a response's start
    # and end; the events in between go to the ``send`` the access middleware got.
    log, client, outer = MemoryRunEventLog(), Client(), Client()
    response = await started(log, client, scope={**SCOPE, BODY_SEND: outer.send})
    log.append(RUN, token(2, "a"))
    await asyncio.sleep(0)
    log.append(RUN, token(3, "b"))
    log.append(RUN, RunEvent(4, "done", "0"))
    await asyncio.wait_for(response, 2)
    assert [m["type"] for m in client.sent] == ["http.response.start", *["http.response.body"] * 2]
    assert client.sent[-1]["more_body"] is False
    assert outer.bodies == [framed(token(2, "a")), framed(token(3, "b"))]
