"""The sources a knowledge agent cites, shown under its reply, live and from history."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support.process import ServerProcess

from .chat import ChatPage
from .conftest import shoot


def test_a_knowledge_agents_reply_lists_its_sources(page: Page, server: ServerProcess) -> None:
    chat = ChatPage(page, server.url).open()
    page.get_by_label("Agent", exact=True).select_option("research")
    chat.send('/call search_knowledge {"query": "turn on API keys", "limit": 1}')
    expect(chat.replies).to_have_count(1)
    sources = chat.last_reply().locator("details.sources")
    expect(sources).to_be_visible()  # the citations event comes before the text
    # the test model echoes the whole search result, one word per 50 ms
    expect(chat.last_reply()).to_have_attribute("aria-busy", "false", timeout=60_000)
    expect(sources).to_be_visible()
    expect(sources.locator("summary")).to_have_text("Sources")
    sources.locator("summary").click()
    first = sources.locator("li").first
    expect(first.locator(".source")).to_have_text(re.compile(r"^docs/[a-z-]+\.md \u203a \S"))
    named = first.locator(".source").inner_text()
    expect(first).to_have_attribute("value", "1")
    expect(first.locator("q")).not_to_be_empty()
    shoot(page, "09-sources")
    chat.reload()
    again = chat.last_reply().locator("details.sources li").first.locator(".source")
    expect(again).to_have_text(named)


def test_other_agents_show_no_sources(page: Page, server: ServerProcess) -> None:
    chat = ChatPage(page, server.url).open()
    chat.ask("hello there")
    expect(chat.last_reply().locator("details.sources")).to_be_hidden()
