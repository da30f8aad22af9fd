"""The page's Server-Sent Events parser (js/sse.js), run in the browser on awkward streams."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from tests.support.process import ServerProcess

from .chat import ChatPage

PARSE = """async ([pieces]) => {
    const { SseParser } = await import("/static/js/sse.js");
    const events = [];
    const parser = new SseParser((event) => events.push(event));
    for (const piece of pieces) parser.feed(piece);
    parser.end();
    return { events, retry: parser.retry };
}"""


def parse(page: Page, *pieces: str) -> dict[str, Any]:
    result = page.evaluate(PARSE, [list(pieces)])
    assert isinstance(result, dict)
    return result


def one_char_at_a_time(text: str) -> list[str]:
    return list(text)


@pytest.fixture
def ready(page: Page, server: ServerProcess) -> Page:
    ChatPage(page, server.url).open()
    return page


def test_events_split_anywhere_come_out_whole(ready: Page) -> None:
    stream = "id: 1\nevent: token\ndata: a\ndata: b\n\nid: 2\nevent: done\ndata: 42\n\n"
    for pieces in ([stream], one_char_at_a_time(stream)):
        assert parse(ready, *pieces)["events"] == [
            {"type": "token", "data": "a\nb", "id": "1"},
            {"type": "done", "data": "42", "id": "2"},
        ]


def test_crlf_and_cr_line_ends_even_split_between_pieces(ready: Page) -> None:
    assert parse(ready, "data: x\r", "\n\r\n", "data: y\r\rdata: z\r")["events"] == [
        {"type": "message", "data": "x", "id": ""},
        {"type": "message", "data": "y", "id": ""},
    ]  # "z" never got its blank line


def test_comments_spaces_retry_and_ids(ready: Page) -> None:
    result = parse(
        ready,
        ": ping\n\nretry: 1500\n\n",
        "id: 5\ndata:no space\n\ndata:  two spaces\n\ndata\n\nid\ndata: after\n\n",
    )
    assert result["retry"] == 1500
    assert result["events"] == [
        {"type": "message", "data": "no space", "id": "5"},
        {"type": "message", "data": " two spaces", "id": "5"},  # the id persists
        {"type": "message", "data": "", "id": "5"},
        {"type": "message", "data": "after", "id": ""},  # an empty id resets it
    ]


def test_a_stream_cut_inside_an_event_drops_that_event(ready: Page) -> None:
    events = parse(ready, "id: 3\nevent: token\ndata: whole\n\nid: 4\nevent: token\ndata: hal")
    assert events["events"] == [{"type": "token", "data": "whole", "id": "3"}]
