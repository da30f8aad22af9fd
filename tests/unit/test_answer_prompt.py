"""The ``answer`` prompt style of base models: one question, and a reply that ends with its line."""

from __future__ import annotations

from agenthost.llm.transcript import ANSWER_STOPS, ReplyDecoder, render_answer_prompt
from agenthost.messages import Message


def test_answer_prompt_puts_the_sources_first_and_ends_with_answer() -> None:
    prompt = render_answer_prompt(
        [Message.system("Sources:\n[1] Keys are on."), Message.user(" How do keys work? ")]
    )
    assert prompt == "Sources:\n[1] Keys are on.\n\nQuestion: How do keys work?\nAnswer:"


def test_answer_replies_stop_at_the_end_of_the_line() -> None:
    decoder = ReplyDecoder(ANSWER_STOPS)
    shown = [decoder.feed(piece.encode()) for piece in (" Use", " keys.", "\nAnswer:", " more")]
    assert "".join(shown) + decoder.finish() == "Use keys."
    assert decoder.stopped


def test_the_chat_decoder_still_allows_single_line_breaks() -> None:
    decoder = ReplyDecoder()
    text = decoder.feed(b"line one\nline two") + decoder.finish()
    assert text == "line one\nline two"
