"""The chat page as the browser tests drive it: send, read replies, find conversations."""

from __future__ import annotations

import uuid

from playwright.sync_api import Locator, Page, expect


def words(count: int, prefix: str = "w") -> str:
    """A message of ``count`` distinct words: its echo streams one word per 50 ms."""
    return " ".join(f"{prefix}{index}" for index in range(count))


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


class ChatPage:
    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url

    def open(self) -> ChatPage:
        self.page.goto(self.url)
        self.ready()
        return self

    def ready(self) -> None:
        expect(self.page.locator("html")).to_have_attribute("data-ready", "true")

    def reload(self) -> None:
        self.page.reload()
        self.ready()

    @property
    def box(self) -> Locator:
        return self.page.get_by_label("Message", exact=True)

    def send(self, text: str) -> None:
        self.box.fill(text)
        self.box.press("Enter")

    @property
    def replies(self) -> Locator:
        return self.page.locator("article.assistant")

    @property
    def questions(self) -> Locator:
        return self.page.locator("article.user")

    def last_reply(self) -> Locator:
        return self.replies.last

    def wait_reply(self, reply: Locator | None = None) -> str:
        """Wait for the (last) reply to finish; its text as shown."""
        reply = reply or self.last_reply()
        expect(reply).to_have_attribute("aria-busy", "false")
        return text_of(reply)

    def ask(self, text: str) -> str:
        count = self.replies.count()
        self.send(text)
        expect(self.replies).to_have_count(count + 1)
        return self.wait_reply()

    def session_id(self) -> str | None:
        value = self.page.evaluate("() => localStorage.getItem('agenthost.sessionId')")
        assert value is None or isinstance(value, str)
        return value

    def conversation(self, title: str) -> Locator:
        return self.page.locator("#session-list li").filter(has_text=title)


def text_of(reply: Locator) -> str:
    return reply.locator(".content").inner_text().strip()
