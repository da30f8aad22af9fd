"""A cut stream resumes with Last-Event-ID: no text lost, none repeated."""

from __future__ import annotations

import re

from playwright.sync_api import Page, Request, Route, expect

from tests.support.process import ServerProcess
from tests.support.proxy import cuttable_proxy

from .chat import ChatPage, words
from .conftest import shoot


def resumes(page: Page) -> list[Request]:
    found: list[Request] = []
    page.on("request", lambda r: found.append(r) if "/runs/" in r.url else None)
    return found


def test_a_live_stream_cut_mid_way_resumes_without_loss(page: Page, server: ServerProcess) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    with cuttable_proxy(port) as proxy:
        chat = ChatPage(page, proxy.url).open()
        attempts = resumes(page)
        message = words(60)
        chat.send(message)
        reply = chat.last_reply()
        expect(reply.locator(".content")).to_contain_text("w5 ")
        assert proxy.cut() >= 1
        expect(reply.locator(".content")).to_contain_text("w20 ")  # after the cut: resumed
        expect(reply).to_have_attribute("aria-busy", "true")
        assert proxy.cut() >= 1  # and once more
        final = chat.wait_reply()
        shoot(page, "07-resumed-after-cuts")

    assert final == f"You said: {message}"
    assert len(attempts) >= 2
    seen = [int(r.headers["last-event-id"]) for r in attempts]
    assert seen == sorted(seen)
    assert all(seen), "every resume names the last event it has"


def test_a_stream_ending_mid_event_resumes_after_the_last_whole_event(
    page: Page, server: ServerProcess
) -> None:
    """The first response is cut inside an event; the first resume fails outright."""
    cut_after: list[int] = []

    def cut_stream(route: Route) -> None:
        response = route.fetch()
        body = response.body()
        tokens = [m.start() for m in re.finditer(rb"event: token\n", body)]
        cut = tokens[8] + len(b"event: token\ndata: w")  # inside the 9th token event
        whole = re.findall(rb"^id: (\d+)$", body[:cut], flags=re.MULTILINE)
        cut_after.append(int(whole[-2]))  # the 9th token's id is there, its event is not
        route.fulfill(response=response, body=body[:cut])

    failed_once: list[str] = []

    def fail_first_resume(route: Route) -> None:
        if not failed_once:
            failed_once.append(route.request.url)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/chat/stream", cut_stream)
    page.route("**/runs/*/events", fail_first_resume)
    chat = ChatPage(page, server.url).open()
    attempts = resumes(page)
    message = words(30)
    final = chat.ask(message)

    assert final == f"You said: {message}"
    assert failed_once
    assert [r.headers.get("last-event-id") for r in attempts] == [str(cut_after[0])] * 2
