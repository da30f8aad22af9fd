"""A response following a live run: the run's task writes the events as it appends them.

The response's own task sends the first events, then sleeps while each new
event goes out from inside ``append``; it wakes for the final event, for an
idle ping, and for a send that cannot finish at once (a slow client), after
which the events are its own again. Nothing is lost or reordered either way.
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
    """The ASGI server's side of one response: what was sent, and a gate to hold sends."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
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


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(2):
        while not condition():
            await asyncio.sleep(0.001)


async def started(
    log: MemoryRunEventLog, client: Client, idle: float | None = None
) -> asyncio.Task[None]:
    log.open(RUN)
    log.append(RUN, RunEvent(1, "session", "s"))
    response = event_stream(log.follow(RUN, idle_timeout=idle), retry_ms=1000)
    task = asyncio.create_task(response(SCOPE, client.receive, client.send))
    await until(lambda: len(client.bodies) == 1)  # retry hint and session event
    await asyncio.sleep(0.01)  # the response has attached its writer
    return task


def text_of(client: Client) -> str:
    return "".join(
        e.data for e in parse(b"".join(client.bodies).decode()).events if e.event == "token"
    )


async def test_events_go_out_inside_append_and_the_final_one_ends_the_body() -> None:
    log, client = MemoryRunEventLog(), Client()
    response = await started(log, client)
    for seq, text in enumerate(["Hel", "lo", " you"], start=2):
        log.append(RUN, token(seq, text))
        # No await since the append: the run's task itself wrote the event.
        assert client.bodies[-1] == b"id: %d\nevent: token\ndata: %s\n\n" % (seq, text.encode())
    log.append(RUN, RunEvent(5, "done", "9"))
    assert len(client.bodies) == 4  # the final event is the response task's to send
    await asyncio.wait_for(response, 2)
    assert client.sent[-1] == {
        "type": "http.response.body",
        "body": b"id: 5\nevent: done\ndata: 9\n\n",
        "more_body": False,
    }
    assert text_of(client) == "Hello you"


async def test_a_send_that_must_wait_is_finished_by_the_response_and_nothing_is_reordered() -> None:
    log, client = MemoryRunEventLog(), Client()
    response = await started(log, client)
    client.hold_at = 3  # the second token's send waits, as for a full socket buffer
    log.append(RUN, token(2, "a"))
    log.append(RUN, token(3, "b"))
    for seq in range(4, 40):  # the run goes on meanwhile: these wait in the log
        log.append(RUN, token(seq, str(seq)))
    assert len(client.bodies) == 2
    client.open.set()
    await until(lambda: len(client.bodies) >= 3)
    log.append(RUN, token(40, "!"))
    log.append(RUN, RunEvent(41, "done", "0"))
    await asyncio.wait_for(response, 2)
    assert text_of(client) == "ab" + "".join(str(n) for n in range(4, 40)) + "!"
    seqs = [int(e.id) for e in parse(b"".join(client.bodies).decode()).events if e.id]
    assert seqs == list(range(1, 42))


async def test_a_failing_send_fails_the_response_not_the_run() -> None:
    log, client = MemoryRunEventLog(), Client()
    response = await started(log, client)
    client.fail_at = 3
    log.append(RUN, token(2, "a"))
    log.append(RUN, token(3, "b"))  # the send raises inside append: append must not
    log.append(RUN, token(4, "c"))
    with pytest.raises(OSError, match="the socket broke"):
        await asyncio.wait_for(response, 2)
    log.append(RUN, RunEvent(5, "done", "0"))  # the run still ends normally
    assert [e.seq for e in [e async for e in log.follow(RUN) if e]] == [1, 2, 3, 4, 5]


async def test_an_idle_run_gets_pings_between_direct_writes() -> None:
    log, client = MemoryRunEventLog(), Client()
    response = await started(log, client, idle=0.05)
    await until(lambda: b": ping\n\n" in client.bodies)
    log.append(RUN, token(2, "late"))
    assert client.bodies[-1] == b"id: 2\nevent: token\ndata: late\n\n"  # direct again
    await until(lambda: client.bodies.count(b": ping\n\n") >= 2)
    log.append(RUN, RunEvent(3, "done", "0"))
    await asyncio.wait_for(response, 2)
    assert text_of(client) == "late"


async def test_a_client_that_leaves_mid_send_detaches_and_the_run_goes_on() -> None:
    log, client = MemoryRunEventLog(), Client()
    response = await started(log, client)
    client.hold_at = 2
    log.append(RUN, token(2, "a"))  # this send waits forever: the client is gone
    client.gone.set()
    await asyncio.wait_for(response, 2)  # ends quietly, as for any disconnect
    for seq in range(3, 10):
        log.append(RUN, token(seq, "x"))  # nobody writes these, nothing raises
    log.append(RUN, RunEvent(10, "done", "0"))
    assert len(client.bodies) == 1


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
    assert client.bodies[-1] == b"id: 6\nevent: token\ndata: 6\n\n"
    log.append(RUN, RunEvent(7, "done", "0"))
    await asyncio.wait_for(task, 2)
    assert text_of(client) == "3456"


async def test_direct_writes_skip_the_layers_inside_the_access_middleware() -> None:
    # The route's ``send`` passes through layers that watch only a response's start
    # and end; the events in between go to the ``send`` the access middleware got.
    log, client, outer = MemoryRunEventLog(), Client(), Client()
    log.open(RUN)
    log.append(RUN, RunEvent(1, "session", "s"))
    scope: Scope = {**SCOPE, BODY_SEND: outer.send}
    response = event_stream(log.follow(RUN), retry_ms=1000)
    task = asyncio.create_task(response(scope, client.receive, client.send))
    await until(lambda: len(client.bodies) == 1)
    await asyncio.sleep(0.01)
    log.append(RUN, token(2, "a"))
    log.append(RUN, token(3, "b"))
    log.append(RUN, RunEvent(4, "done", "0"))
    await asyncio.wait_for(task, 2)
    assert [m["type"] for m in client.sent] == ["http.response.start", *["http.response.body"] * 2]
    assert client.sent[-1]["more_body"] is False
    assert outer.bodies == [
        b"id: 2\nevent: token\ndata: a\n\n",
        b"id: 3\nevent: token\ndata: b\n\n",
    ]
