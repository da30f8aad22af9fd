"""Model output can never run script or load remote content in the page."""

from __future__ import annotations

from playwright.sync_api import Dialog, Page, Request, expect

from tests.support.process import ServerProcess

from .chat import ChatPage
from .conftest import PageProblems, shoot

HOSTILE = (
    'Look <img src=x onerror="window.__xss=1;alert(1)"> and '
    "<script>window.__xss=2;alert(2)</script> "
    "[click](javascript:window.__xss=3) ![pixel](http://198.51.100.7/pixel.png) "
    '<a href="#" onclick="window.__xss=4">here</a>'
)


def test_html_and_script_in_a_reply_render_inert(
    page: Page, server: ServerProcess, problems: PageProblems
) -> None:
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    requested: list[str] = []

    def record(request: Request) -> None:
        if not request.url.startswith(server.url) or request.url.endswith("/x"):
            requested.append(request.url)

    page.on("request", record)
    chat = ChatPage(page, server.url).open()
    chat.ask(HOSTILE)
    reply = chat.last_reply()
    shoot(page, "06-hostile-output-inert")

    assert page.evaluate("() => window.__xss") is None
    assert dialogs == []
    assert requested == []
    for selector in ("img", "script", "[onerror]", "[onclick]", 'a[href^="javascript:"]'):
        expect(reply.locator(selector)).to_have_count(0)
    expect(chat.questions.last.locator("img, script")).to_have_count(0)
    # Raw HTML is shown as the text the model wrote, not interpreted.
    expect(reply.locator(".content")).to_contain_text('<img src=x onerror="window.__xss=1;')
    expect(reply.locator(".content")).to_contain_text("<script>window.__xss=2;alert(2)</script>")
    expect(chat.questions.last).to_have_text(HOSTILE)
    # The image became a plain link (not loaded), opening in a new tab without a referrer.
    link = reply.get_by_role("link", name="pixel")
    expect(link).to_have_attribute("href", "http://198.51.100.7/pixel.png")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(link).to_have_attribute("target", "_blank")
    expect(reply.locator("a", has_text="click")).not_to_have_attribute(
        "href", "javascript:window.__xss=3"
    )
    assert problems.errors == []


def test_the_csp_forbids_inline_script_even_if_some_got_in(
    page: Page, server: ServerProcess, problems: PageProblems
) -> None:
    response = page.goto(server.url)
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    ChatPage(page, server.url).ready()
    injected = page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.__inline = 1";
            document.body.append(script);
            const img = document.createElement("img");
            img.setAttribute("onerror", "window.__inline = 2");
            img.src = "x";
            document.body.append(img);
            return new Promise((done) => setTimeout(() => done(window.__inline ?? null), 300));
        }"""
    )
    assert injected is None
    assert any("Content Security Policy" in error for error in problems.errors)
    problems.errors.clear()  # the violations were the point
