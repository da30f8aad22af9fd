"""Chatting in the page: streaming, stop, history after a reload, tool steps, copy, agents."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.support.process import ServerProcess

from .chat import ChatPage, text_of, unique, words
from .conftest import VIEWPORT, shoot


def test_a_reply_streams_in_token_by_token_with_markdown(page: Page, server: ServerProcess) -> None:
    chat = ChatPage(page, server.url).open()
    shoot(page, "01-empty-light")
    message = f"Hello **world**, with `code` and {words(24)}"
    chat.send(message)
    reply = chat.last_reply()
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(reply).to_have_attribute("aria-busy", "true")
    expect(reply.locator(".content strong")).to_have_text("world")
    partial = text_of(reply)
    shoot(page, "02-streaming")
    final = chat.wait_reply()

    expected = f"You said: Hello world, with code and {words(24)}"
    assert final == expected
    assert expected.startswith(partial)
    assert len(partial) < len(expected), "the reply arrived whole, not streamed"
    expect(reply.locator(".content code")).to_have_text("code")
    expect(reply.locator(".usage")).to_have_text(re.compile(r"^\d[\d,]* tokens$"))
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(chat.questions.last).to_have_text(message)
    title = httpx.get(f"{server.url}/sessions/{chat.session_id()}").json()["title"]
    expect(page.locator("#chat-title")).to_have_text(title)


def test_the_usage_of_each_reply_is_the_sessions_growth(page: Page, server: ServerProcess) -> None:
    chat = ChatPage(page, server.url).open()
    chat.ask(unique("first"))
    chat.ask(unique("second"))
    session = httpx.get(f"{server.url}/sessions/{chat.session_id()}").json()
    shown = [
        int(text.replace(",", "").split()[0])
        for text in chat.replies.locator(".usage").all_inner_texts()
    ]
    assert sum(shown) == session["tokens_used"]


def test_stop_keeps_what_was_written_and_it_survives_a_reload(
    page: Page, server: ServerProcess
) -> None:
    chat = ChatPage(page, server.url).open()
    message = words(80)
    chat.send(message)
    reply = chat.last_reply()
    expect(reply.locator(".content")).to_contain_text("w3 ")
    page.get_by_role("button", name="Stop").click()
    stopped = chat.wait_reply()
    expect(reply.locator(".badge")).to_have_text("Stopped")
    shoot(page, "03-stopped")

    expected = f"You said: {message}"
    assert expected.startswith(stopped)
    assert len(stopped) < len(expected)
    chat.reload()
    expect(chat.replies).to_have_count(1)
    assert text_of(chat.last_reply()) == stopped
    saved = httpx.get(f"{server.url}/sessions/{chat.session_id()}").json()["messages"]
    assert saved[-1]["role"] == "assistant"
    assert saved[-1]["content"] == stopped


def test_escape_in_the_message_box_stops_the_reply(page: Page, server: ServerProcess) -> None:
    chat = ChatPage(page, server.url).open()
    chat.send(words(80))
    expect(chat.last_reply().locator(".content")).to_contain_text("w2 ")
    chat.box.press("Escape")
    expect(chat.last_reply().locator(".badge")).to_have_text("Stopped")


def test_the_conversation_and_its_history_come_back_after_a_reload(
    page: Page, server: ServerProcess
) -> None:
    chat = ChatPage(page, server.url).open()
    first, second = unique("remember this"), unique("and this")
    chat.ask(first)
    chat.ask(second)
    chat.reload()

    expect(chat.questions).to_have_text([first, second])
    expect(chat.replies.locator(".content")).to_have_text(
        [f"You said: {first}", f"You said: {second}"]
    )
    expect(page.locator("#chat-title")).to_have_text(first)
    current = chat.conversation(first).locator(".session-open")
    expect(current).to_have_attribute("aria-current", "page")
    expect(page.get_by_label("Agent", exact=True)).to_be_disabled()
    chat.ask(unique("still here"))
    expect(chat.replies).to_have_count(3)


def test_a_reply_still_running_is_followed_again_after_a_reload(
    page: Page, server: ServerProcess
) -> None:
    chat = ChatPage(page, server.url).open()
    message = words(60)
    chat.send(message)
    expect(chat.last_reply().locator(".content")).to_contain_text("w2 ")
    chat.reload()
    assert chat.wait_reply() == f"You said: {message}"
    expect(chat.replies).to_have_count(1)


def test_tool_calls_show_as_collapsible_steps(page: Page, server: ServerProcess) -> None:
    chat = ChatPage(page, server.url).open()
    assert chat.ask('/call calculator {"expression": "6*7"}') == "calculator returned: 42"
    step = chat.last_reply().locator("details.step")
    expect(step.locator("summary")).to_have_text("Used calculator")
    expect(step).not_to_have_attribute("open", "")
    step.locator("summary").click()
    expect(step).to_contain_text("Arguments")
    expect(step.locator("pre").last).to_have_text("42")
    shoot(page, "04-tool-step")
    chat.reload()
    expect(chat.last_reply().locator("details.step summary")).to_have_text("Used calculator")


def test_copy_puts_the_replys_markdown_on_the_clipboard(
    browser: Browser, server: ServerProcess
) -> None:
    context = browser.new_context(
        viewport=VIEWPORT, permissions=["clipboard-read", "clipboard-write"]
    )
    try:
        page = context.new_page()
        chat = ChatPage(page, server.url).open()
        chat.ask("Some **bold** text")
        chat.last_reply().get_by_role("button", name="Copy reply").click()
        expect(chat.last_reply().locator(".meta")).to_contain_text("Copied")
        assert page.evaluate("() => navigator.clipboard.readText()") == (
            "You said: Some **bold** text"
        )
    finally:
        context.close()


def test_enter_sends_and_shift_enter_starts_a_new_line(page: Page, server: ServerProcess) -> None:
    chat = ChatPage(page, server.url).open()
    chat.box.focus()
    page.keyboard.type("line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line two")
    expect(chat.box).to_have_value("line one\nline two")
    expect(chat.questions).to_have_count(0)
    page.keyboard.press("Enter")
    expect(chat.questions).to_have_text(["line one\nline two"])
    expect(chat.box).to_have_value("")
    chat.wait_reply()


def test_the_page_is_usable_from_the_keyboard_with_labels(
    page: Page, server: ServerProcess
) -> None:
    chat = ChatPage(page, server.url).open()
    expect(chat.box).to_be_focused()  # ready to type
    title = unique("keyboard only")
    chat.ask(title)
    skip = page.get_by_role("link", name="Skip to the message box")
    skip.focus()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(chat.box).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Send")).to_be_focused()

    new = page.get_by_role("button", name="New conversation")
    new.focus()
    page.keyboard.press("Enter")
    expect(chat.questions).to_have_count(0)
    expect(chat.box).to_be_focused()
    new.focus()
    page.keyboard.press("Tab")
    expect(chat.conversation(title).locator(".session-open")).to_be_focused()
    page.keyboard.press("Enter")
    expect(chat.questions).to_have_text([title])
    page.get_by_role("button", name=f"Delete “{title}”").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Delete conversation?")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name=f"Delete “{title}”")).to_be_focused()
    for role, name in (
        ("combobox", "Agent"),
        ("log", "Conversation"),
        ("navigation", "Your conversations"),
    ):
        expect(page.get_by_role(role, name=name)).to_have_count(1)  # type: ignore[arg-type]


def test_the_agent_picker_chooses_the_agent_of_a_new_conversation(
    page: Page, server: ServerProcess
) -> None:
    chat = ChatPage(page, server.url).open()
    picker = page.get_by_label("Agent", exact=True)
    expect(picker.locator("option")).to_have_text(["assistant", "research", "faq"])
    expect(picker).to_have_value("assistant")
    picker.select_option("faq")
    expect(page.locator("#empty-agent")).to_have_text(
        "Answers questions about agenthost from its documentation."
    )
    chat.ask(unique("what is agenthost?"))
    expect(picker).to_be_disabled()
    session = httpx.get(f"{server.url}/sessions/{chat.session_id()}").json()
    assert session["agent"] == "faq"

    chat.ask(unique("and more?"))
    assert httpx.get(f"{server.url}/sessions/{chat.session_id()}").json()["agent"] == "faq"
    page.get_by_role("button", name="New conversation").click()
    expect(picker).to_be_enabled()
    expect(picker).to_have_value("faq")  # remembered for new conversations
