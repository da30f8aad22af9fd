"""The conversations in the sidebar: newest first, new, switch, delete with confirmation."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.support.process import ServerProcess

from .chat import ChatPage, text_of, unique
from .conftest import shoot


def test_create_switch_and_delete_conversations(page: Page, server: ServerProcess) -> None:
    chat = ChatPage(page, server.url).open()
    first, second = unique("first conversation"), unique("second conversation")
    chat.ask(first)
    first_id = chat.session_id()
    page.get_by_role("button", name="New conversation").click()
    expect(chat.questions).to_have_count(0)
    expect(page.locator("#chat-title")).to_have_text("New conversation")
    chat.ask(second)
    second_id = chat.session_id()
    assert first_id != second_id

    titles = page.locator("#session-list .session-title").all_inner_texts()
    assert titles.index(second) < titles.index(first), "newest first"
    expect(chat.conversation(second).locator(".session-open")).to_have_attribute(
        "aria-current", "page"
    )

    chat.conversation(first).locator(".session-open").click()
    expect(chat.questions).to_have_text([first])
    assert text_of(chat.last_reply()) == f"You said: {first}"
    expect(page.locator("#chat-title")).to_have_text(first)
    assert chat.session_id() == first_id

    chat.conversation(second).get_by_role("button", name=f"Delete “{second}”").click()
    dialog = page.get_by_role("dialog", name="Delete conversation?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(second)
    shoot(page, "05-delete-confirmation")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(chat.conversation(second)).to_have_count(1)
    assert httpx.get(f"{server.url}/sessions/{second_id}").status_code == 200

    chat.conversation(second).get_by_role("button", name=f"Delete “{second}”").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(chat.conversation(second)).to_have_count(0)
    assert httpx.get(f"{server.url}/sessions/{second_id}").status_code == 404
    expect(chat.questions).to_have_text([first])  # the open conversation stays

    chat.conversation(first).get_by_role("button", name=f"Delete “{first}”").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(chat.conversation(first)).to_have_count(0)
    expect(page.locator("#chat-title")).to_have_text("New conversation")
    expect(chat.questions).to_have_count(0)
    assert chat.session_id() is None


def test_untitled_conversations_are_called_new_conversation(
    page: Page, server: ServerProcess
) -> None:
    created = httpx.post(f"{server.url}/sessions").json()["session_id"]
    chat = ChatPage(page, server.url).open()
    row = page.locator(f'#session-list li[data-session-id="{created}"]')
    expect(row.locator(".session-title")).to_have_text("New conversation")
    row.locator(".session-open").click()
    expect(page.locator("#chat-title")).to_have_text("New conversation")
    chat.ask("hello there")
    assert chat.session_id() == created


def test_a_conversation_deleted_elsewhere_is_reported_and_dropped(
    page: Page, server: ServerProcess
) -> None:
    chat = ChatPage(page, server.url).open()
    title = unique("soon gone")
    chat.ask(title)
    session_id = chat.session_id()
    assert httpx.delete(f"{server.url}/sessions/{session_id}").status_code == 204
    chat.reload()
    expect(page.get_by_role("alert")).to_have_text("That conversation no longer exists.")
    expect(chat.conversation(title)).to_have_count(0)
    expect(page.locator("#chat-title")).to_have_text("New conversation")
