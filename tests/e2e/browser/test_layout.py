"""Light and dark themes from the system setting, and the page at phone width."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.support.process import ServerProcess

from .chat import ChatPage
from .conftest import VIEWPORT, shoot

CODE_MESSAGE = (
    "Here is some code:\n\n```python\ndef double(x: int) -> int:\n    return x * 2\n```\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |"
)


def background(chat: ChatPage) -> str:
    value = chat.page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert isinstance(value, str)
    return value


def test_the_theme_follows_the_system_setting(browser: Browser, server: ServerProcess) -> None:
    colours = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport=VIEWPORT, color_scheme=scheme)
        try:
            chat = ChatPage(context.new_page(), server.url).open()
            chat.ask(CODE_MESSAGE)
            expect(chat.last_reply().locator("code.hljs")).to_have_count(1)  # highlighted
            expect(chat.last_reply().locator("table")).to_have_count(1)
            chat.ask('/call calculator {"expression": "2**10"}')
            colours[scheme] = background(chat)
            shoot(chat.page, f"10-conversation-{scheme}")
        finally:
            context.close()
    assert colours == {"light": "rgb(255, 255, 255)", "dark": "rgb(15, 17, 21)"}


def test_at_phone_width_the_conversations_are_a_drawer(
    browser: Browser, server: ServerProcess
) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, color_scheme="dark"
    )
    try:
        page = context.new_page()
        chat = ChatPage(page, server.url).open()
        sidebar = page.locator("#sidebar")
        menu = page.get_by_role("button", name="Show conversations")
        expect(sidebar).to_be_hidden()
        expect(menu).to_have_attribute("aria-expanded", "false")
        chat.ask("Hello from a phone")
        chat.ask(f"A long line: `{'x' * 120}`\n\n```\n{'y' * 200}\n```\n\n{'z' * 150}")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, "nothing overflows sideways"
        shoot(page, "11-phone-dark")

        menu.click()
        expect(sidebar).to_be_visible()
        expect(menu).to_have_attribute("aria-expanded", "true")
        expect(chat.conversation("Hello from a phone").first).to_be_visible()
        shoot(page, "12-phone-drawer")
        page.keyboard.press("Escape")
        expect(sidebar).to_be_hidden()
        expect(menu).to_be_focused()

        menu.click()
        page.get_by_role("button", name="New conversation").click()
        expect(sidebar).to_be_hidden()
        expect(chat.questions).to_have_count(0)
    finally:
        context.close()
