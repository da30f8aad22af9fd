"""POST /chat/stream and GET /runs/{id}/events: framing, exact text, resume, cancel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from agenthost.errors import ModelUnavailableError
from agenthost.runs.events import RunEvent
from agenthost.server.sse import EventStreamResponse, event_stream
from agenthost.testing import FunctionModel, Reply, TestModel
from tests.support.metrics import Scrape
from tests.support.sse import Event, Parser, parse, tokens

from .conftest import running_app, served_app

TRICKY_CHUNKS = (
    "  leading spaces",
    "\n\nblank line above\n",
    "data: not an event\n",
    "event: nope\nid: 99\n",
    "\r\nwindows line\r",
    "\nand a split CRLF\r",
    "emoji 👋🏽 and ünïcödé",
    ":not a comment\n",
    "   ",
    "\n",
)
TRICKY_TEXT = "".join(TRICKY_CHUNKS).replace("\r\n", "\n").replace("\r", "\n")


async def stream_events(client: httpx.AsyncClient, body: dict[str, object]) -> list[Event]:
    response = await client.post("/chat/stream", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    parsed = parse(response.text)
    assert parsed.retry == 3000
    return parsed.events


async def test_stream_events_come_in_the_contract_order(client: httpx.AsyncClient) -> None:
    events = await stream_events(client, {"message": "Tell me a story"})
    assert [e.event for e in events][:2] == ["session", "run"]
    assert events[-1].event == "done"
    assert {e.event for e in events[2:-1]} == {"token"}
    assert [e.id for e in events] == [str(n) for n in range(1, len(events) + 1)]
    run = json.loads(events[1].data)
    assert run["session_id"] == events[0].data
    assert run["model"] == "test"
    assert run["agent"] == "assistant"
    assert tokens(events) == "You said: Tell me a story"
    session = (await client.get(f"/sessions/{events[0].data}")).json()
    assert events[-1].data == str(session["tokens_used"])


async def test_tool_events_carry_calls_and_results(client: httpx.AsyncClient) -> None:
    events = await stream_events(client, {"message": '/call calculator {"expression": "2**5"}'})
    kinds = [e.event for e in events]
    assert kinds[:4] == ["session", "run", "tool_call", "tool_result"]
    call = json.loads(events[2].data)
    result = json.loads(events[3].data)
    assert call == {"id": call["id"], "name": "calculator", "arguments": '{"expression": "2**5"}'}
    assert result == {"id": call["id"], "name": "calculator", "result": "32"}
    failed = await stream_events(client, {"message": '/call calculator {"expression": "1/0"}'})
    assert json.loads(failed[3].data)["error"] == "Error from calculator: division by zero"


async def test_streamed_text_equals_the_stored_reply_byte_for_byte() -> None:
    model = FunctionModel(lambda _: Reply(chunks=TRICKY_CHUNKS))
    async with running_app(model) as (_, client):
        events = await stream_events(client, {"message": "tricky"})
        whole = await client.post("/chat", json={"message": "tricky", "session_id": events[0].data})
        session = (await client.get(f"/sessions/{events[0].data}")).json()
    streamed = tokens(events)
    assert streamed == TRICKY_TEXT
    assert "\r" not in streamed
    assert [e.event for e in events].count("token") == len(TRICKY_CHUNKS)
    assert session["messages"][1]["content"] == streamed
    assert whole.json()["response"] == streamed
    assert session["messages"][3]["content"] == streamed


async def test_a_reply_with_halves_of_surrogate_pairs_streams_and_stores_as_valid_text() -> None:
    """A model's text may hold surrogates (a server's JSON can): no event or store refuses it."""
    chunks = ("a split pair: \ud83c", "\udf89, a lone half: \udc00, and", " half at the end \ud83d")
    expected = "a split pair: 🎉, a lone half: \ufffd, and half at the end \ufffd"
    model = FunctionModel(lambda _: Reply(chunks=chunks))
    async with running_app(model) as (_, client):
        events = await stream_events(client, {"message": "emoji"})
        whole = await client.post("/chat", json={"message": "again", "session_id": events[0].data})
        session = (await client.get(f"/sessions/{events[0].data}")).json()
    assert events[-1].event == "done"
    assert tokens(events) == expected
    assert whole.status_code == 200, whole.text
    assert whole.json()["response"] == expected
    assert [m["content"] for m in session["messages"]] == ["emoji", expected, "again", expected]


async def test_a_model_failure_mid_stream_ends_with_an_error_event() -> None:
    failing = Reply("half of it", error=ModelUnavailableError("The model went away"), fail_after=2)
    async with running_app(FunctionModel(lambda _: failing)) as (_, client):
        events = await stream_events(client, {"message": "hi"})
        history = (await client.get(f"/sessions/{events[0].data}")).json()["messages"]
    assert events[-1].event == "error"
    assert json.loads(events[-1].data)["error"] == "The model went away"
    assert tokens(events) == "half of"
    assert [m["content"] for m in history] == ["hi", "half of"]


async def test_resume_with_last_event_id_replays_exactly_what_was_missed() -> None:
    model = FunctionModel(lambda _: Reply(chunks=tuple(f"w{n} " for n in range(40)), delay=0.02))
    async with served_app(model) as (_, client):
        seen: list[Event] = []
        parser = Parser()
        async with client.stream("POST", "/chat/stream", json={"message": "go"}) as response:
            async for chunk in response.aiter_text():
                seen.extend(parser.feed(chunk))
                if sum(e.event == "token" for e in seen) >= 5:
                    break  # the client drops the connection mid-reply
        run_id = json.loads(seen[1].data)["run_id"]
        last_id = seen[-1].id
        assert last_id is not None
        resumed = await client.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": last_id})
        rest = parse(resumed.text).events
        session = (await client.get(f"/sessions/{seen[0].data}")).json()
    assert rest[0].id == str(int(last_id) + 1)
    assert rest[-1].event == "done"
    assert tokens(seen) + tokens(rest) == "".join(f"w{n} " for n in range(40))
    assert session["messages"][-1]["content"] == tokens(seen) + tokens(rest)


async def test_a_dropped_client_s_stream_ends_at_once_and_its_run_still_finishes() -> None:
    model = FunctionModel(lambda _: Reply(chunks=tuple(f"{n}," for n in range(60)), delay=0.05))
    async with served_app(model) as (app, client):

        async def open_streams() -> float:
            return Scrape((await client.get("/metrics")).text).value("agenthost_active_streams")

        async with client.stream("POST", "/chat/stream", json={"message": "go"}) as response:
            parser = Parser()
            first: list[Event] = []
            # Held in a name: a generator dropped after ``break`` is closed when collected,
            # and that would close the connection before the check below.
            chunks = response.aiter_text()
            async for chunk in chunks:
                first.extend(parser.feed(chunk))
                if len(first) >= 3:
                    break
            assert await open_streams() == 1
        # Leaving the block closes the connection: the client is gone.
        runs = app.state.services.runs
        async with asyncio.timeout(1.5):  # the run still has about 3 s to go
            while await open_streams():
                await asyncio.sleep(0.02)
        assert runs.active
        while runs.active:
            await asyncio.sleep(0.02)
        session = (await client.get(f"/sessions/{first[0].data}")).json()
    assert session["messages"][-1]["content"] == "".join(f"{n}," for n in range(60))


async def test_finished_runs_stay_replayable(client: httpx.AsyncClient) -> None:
    events = await stream_events(client, {"message": "remember me"})
    run_id = json.loads(events[1].data)["run_id"]
    replay = parse((await client.get(f"/runs/{run_id}/events")).text).events
    assert replay == events
    tail = parse(
        (await client.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": "3"})).text
    ).events
    assert tail == events[3:]


async def test_cancel_stops_the_run_and_keeps_what_was_generated() -> None:
    model = FunctionModel(lambda _: Reply(chunks=tuple(f"t{n} " for n in range(500)), delay=0.01))
    async with served_app(model) as (_, client):
        parser = Parser()
        events: list[Event] = []
        async with client.stream("POST", "/chat/stream", json={"message": "go"}) as response:
            async for chunk in response.aiter_text():
                events.extend(parser.feed(chunk))
                if len(events) == 6:
                    run_id = json.loads(events[1].data)["run_id"]
                    cancel = await client.post(f"/runs/{run_id}/cancel")
                    assert cancel.json() == {"run_id": run_id, "cancelled": True}
        again = await client.post(f"/runs/{run_id}/cancel")
        session = (await client.get(f"/sessions/{events[0].data}")).json()
    assert events[-1].event == "done"
    assert again.json()["cancelled"] is False
    streamed = tokens(events)
    assert 0 < len(streamed) < len("".join(f"t{n} " for n in range(500)))
    assert session["messages"][-1]["content"] == streamed


async def test_unknown_runs_are_404(client: httpx.AsyncClient) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert (await client.get(f"/runs/{missing}/events")).status_code == 404
    assert (await client.post(f"/runs/{missing}/cancel")).status_code == 404


async def test_idle_streams_get_pings() -> None:
    model = FunctionModel(lambda _: Reply(chunks=("late",), delay=0.35))
    async with running_app(model, sse_ping_seconds=0.1) as (_, client):
        response = await client.post("/chat/stream", json={"message": "wait"})
    parsed = parse(response.text)
    assert parsed.comments.count("ping") >= 2
    assert tokens(parsed.events) == "late"


@pytest.mark.parametrize("path", ["/chat/stream"])
async def test_idempotent_stream_retry_replays_the_same_events(path: str) -> None:
    model = TestModel()
    async with running_app(model) as (_, client):
        headers = {"Idempotency-Key": "k-1"}
        first = parse((await client.post(path, json={"message": "once"}, headers=headers)).text)
        retry = parse((await client.post(path, json={"message": "once"}, headers=headers)).text)
    assert retry.events == first.events
    assert len(model.requests) == 1


async def test_an_event_stream_cancelled_from_elsewhere_is_not_taken_for_a_disconnect() -> None:
    # Only the client leaving ends the stream quietly; a cancel from the server
    # (a shutdown, a timeout around the request) must still reach the caller.
    sent: list[Message] = []
    client_gone = asyncio.Event()

    async def receive() -> Message:
        await client_gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    async def forever() -> AsyncIterator[bytes]:
        while True:
            yield b"data: x\n\n"
            await asyncio.sleep(0.01)

    scope: Scope = {"type": "http", "asgi": {"spec_version": "2.3"}}
    cancelled = asyncio.create_task(EventStreamResponse(forever())(scope, receive, send))
    await asyncio.sleep(0.05)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled

    left = asyncio.create_task(EventStreamResponse(forever())(scope, receive, send))
    await asyncio.sleep(0.05)
    client_gone.set()
    async with asyncio.timeout(2):
        await left  # ends quietly
    assert not left.cancelled()
    assert sent[0]["type"] == "http.response.start"


async def _sent_by(events: list[RunEvent | None]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    async def items() -> AsyncIterator[RunEvent | None]:
        for event in events:
            yield event

    scope: Scope = {"type": "http", "asgi": {"spec_version": "2.3"}}
    await event_stream(items(), retry_ms=2500)(scope, receive, send)
    return sent


async def test_the_retry_hint_and_the_end_of_the_body_share_the_events_writes() -> None:
    # One ASGI message (one write to the socket) fewer at each end of a stream:
    # the hint goes with the first event, the final event ends the body.
    sent = await _sent_by(
        [RunEvent(1, "session", "s"), RunEvent(2, "token", " hi"), RunEvent(3, "done", "7")]
    )
    assert [m["type"] for m in sent] == ["http.response.start", *["http.response.body"] * 3]
    bodies = [(m["body"], m["more_body"]) for m in sent[1:]]
    assert bodies == [
        (b"retry: 2500\n\nid: 1\nevent: session\ndata: s\n\n", True),
        (b"id: 2\nevent: token\ndata:  hi\n\n", True),
        (b"id: 3\nevent: done\ndata: 7\n\n", False),
    ]
    text = b"".join(body for body, _ in bodies).decode()
    assert [e.event for e in parse(text).events] == ["session", "token", "done"]
    assert parse(text).retry == 2500


async def test_a_stream_that_starts_with_a_ping_sends_the_hint_with_it() -> None:
    sent = await _sent_by([None, RunEvent(1, "error", '{"error":"x"}')])
    assert [(m["body"], m.get("more_body")) for m in sent[1:]] == [
        (b"retry: 2500\n\n: ping\n\n", True),
        (b'id: 1\nevent: error\ndata: {"error":"x"}\n\n', False),
    ]


async def test_a_stream_without_a_final_event_still_ends_its_body() -> None:
    sent = await _sent_by([RunEvent(1, "session", "s")])
    assert [(m["body"], m.get("more_body")) for m in sent[1:]] == [
        (b"retry: 2500\n\nid: 1\nevent: session\ndata: s\n\n", True),
        (b"", False),
    ]


async def test_a_live_streams_tokens_go_straight_to_the_servers_send() -> None:
    # Every layer of the app around the route looks at a response's start and end
    # only; the tokens of a live run skip them all (``access.BODY_SEND``).
    async with running_app(TestModel(delay=0.01)) as (app, client):
        stack = app.build_middleware_stack()
        through_layers: list[Message] = []

        async def watched(scope: Scope, receive: Receive, send: Send) -> None:
            async def watching(message: Message) -> None:
                through_layers.append(message)
                await send(message)

            await stack(scope, receive, watching)

        app.middleware_stack = watched
        response = await client.post("/chat/stream", json={"message": "one two three four five"})
    events = parse(response.text).events
    assert tokens(events) == "You said: one two three four five"
    streamed = sum(event.event == "token" for event in events)
    bodies = [m for m in through_layers if m["type"] == "http.response.body"]
    assert streamed >= 5
    assert bodies[-1]["more_body"] is False  # the end goes the whole way, for the access line
    assert len(bodies) < streamed  # the tokens between went to the server's send itself
