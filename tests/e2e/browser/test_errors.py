"""Errors in words, and the API key prompt when the server needs a key."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, Route, expect

from tests.support.process import ServerProcess

from .chat import ChatPage, unique
from .conftest import Keyed, shoot


def envelope(route: Route, status: int, error: str, headers: dict[str, str]) -> None:
    body = json.dumps({"error": error, "detail": None, "request_id": "test"})
    route.fulfill(status=status, headers=headers, content_type="application/json", body=body)


@pytest.mark.parametrize(
    ("status", "error", "headers", "shown"),
    [
        (
            429,
            "Rate limit exceeded: 120 requests per minute",
            {"Retry-After": "7"},
            "Rate limited: too many requests or tokens for now. Try again in 7 seconds.",
        ),
        (
            409,
            "Session busy",
            {},
            "This conversation is still answering an earlier message.",
        ),
        (
            502,
            "The model server at api.example.com is unavailable",
            {"Retry-After": "30"},
            "The model is unavailable: The model server at api.example.com is unavailable. "
            "Try again in 30 seconds.",
        ),
        (
            503,
            "Service unavailable: shutting down",
            {"Retry-After": "5"},
            "The server is not ready (starting, shutting down, or its store is unavailable). "
            "Try again in 5 seconds.",
        ),
    ],
)
def test_a_refused_message_is_explained_and_given_back(
    page: Page, server: ServerProcess, status: int, error: str, headers: dict[str, str], shown: str
) -> None:
    page.route("**/chat/stream", lambda route: envelope(route, status, error, headers))
    chat = ChatPage(page, server.url).open()
    message = unique("try me")
    chat.send(message)
    expect(page.get_by_role("alert")).to_contain_text(shown)
    expect(chat.box).to_have_value(message)  # nothing is lost, nothing re-sent by itself
    expect(chat.questions).to_have_count(0)
    if status == 429:
        shoot(page, "08-rate-limited")


def test_an_error_mid_reply_keeps_the_partial_text(page: Page, server: ServerProcess) -> None:
    stream = (
        "retry: 3000\n\n"
        "id: 1\nevent: session\ndata: 00000000-0000-4000-8000-000000000001\n\n"
        'id: 2\nevent: run\ndata: {"run_id": "00000000-0000-4000-8000-000000000002"}\n\n'
        "id: 3\nevent: token\ndata: Half a\n\n"
        "id: 4\nevent: token\ndata:  reply\n\n"
        'id: 5\nevent: error\ndata: {"error": "The model server at api.example.com '
        'sent no output within 60s", "detail": null, "request_id": "r"}\n\n'
    )
    page.route(
        "**/chat/stream",
        lambda route: route.fulfill(status=200, content_type="text/event-stream", body=stream),
    )
    chat = ChatPage(page, server.url).open()
    chat.send("hello")
    reply = chat.last_reply()
    expect(reply).to_have_attribute("aria-busy", "false")
    expect(reply.locator(".content")).to_have_text("Half a reply")
    expect(reply.locator(".reply-error")).to_have_text(
        "The reply failed: The model server at api.example.com sent no output within 60s"
    )


def test_the_page_asks_for_a_key_and_keeps_it(page: Page, keyed: Keyed) -> None:
    chat = ChatPage(page, keyed.server.url)
    page.goto(keyed.server.url)  # the page itself needs no key
    dialog = page.get_by_role("dialog", name="API key")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("This server needs an API key.")
    shoot(page, "09-key-prompt")

    dialog.get_by_label("Key").fill("ah_" + "x" * 43)
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_contain_text("The server did not accept this API key.")
    dialog.get_by_label("Key").fill(keyed.key)
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    chat.ready()
    message = unique("with a key")
    assert chat.ask(message) == f"You said: {message}"

    chat.reload()
    expect(dialog).to_be_hidden()
    expect(chat.questions).to_have_text([message])
    stored = page.evaluate("() => localStorage.getItem('agenthost.apiKey')")
    assert stored == keyed.key
    expect(page.get_by_role("button", name="API key")).to_be_visible()
