"""Splitting a parsed document into chunks that follow its headings and paragraphs.

A chunk never spans two sections, so its heading says what it is about. Within
a section, whole paragraphs (a fenced code block or a table counts as one) are
packed into chunks of at most ``max_chars``; a paragraph longer than that is cut
between sentences. Consecutive chunks of one section overlap by their boundary
text (up to ``overlap`` characters), so a fact that straddles the cut is whole in
one of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from agenthost.knowledge.base import Chunk, ParsedDocument

MAX_CHARS = 1000
OVERLAP = 150
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|\n")
_FENCE = re.compile(r"^\s*(```|~~~)")


def chunk_document(
    document: ParsedDocument, *, max_chars: int = MAX_CHARS, overlap: int = OVERLAP
) -> tuple[Chunk, ...]:
    """The document's chunks in reading order."""
    chunks: list[Chunk] = []
    for section in document.sections:
        heading = section.heading or document.title
        for text in _pack(list(_paragraphs(section.text, max_chars)), max_chars, overlap):
            chunks.append(Chunk(len(chunks), heading, text))
    return tuple(chunks)


def _paragraphs(text: str, max_chars: int) -> Iterator[str]:
    """Blank-line separated blocks (code fences kept whole), long ones cut at sentences."""
    block: list[str] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        if not line.strip() and not fenced:
            if block:
                yield from _cut("\n".join(block).strip(), max_chars)
            block = []
        else:
            block.append(line.rstrip())
    if block:
        yield from _cut("\n".join(block).strip(), max_chars)


def _cut(paragraph: str, max_chars: int) -> Iterator[str]:
    if len(paragraph) <= max_chars:
        if paragraph:
            yield paragraph
        return
    piece = ""
    for whole in _SENTENCE_END.split(paragraph):
        sentence = whole
        while len(sentence) > max_chars:  # no sentence boundary at all: cut at a space
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            if piece:
                yield piece
                piece = ""
            yield sentence[:cut].strip()
            sentence = sentence[cut:].strip()
        joined = f"{piece} {sentence}".strip() if piece else sentence
        if len(joined) > max_chars:
            yield piece
            piece = sentence
        else:
            piece = joined
    if piece.strip():
        yield piece.strip()


def _pack(paragraphs: list[str], max_chars: int, overlap: int) -> Iterator[str]:
    current: list[str] = []
    size = 0
    for paragraph in paragraphs:
        if current and size + 2 + len(paragraph) > max_chars:
            yield "\n\n".join(current)
            tail = _tail(current[-1], overlap)
            current = [tail] if tail and len(tail) + 2 + len(paragraph) <= max_chars else []
            size = sum(len(p) + 2 for p in current)
        current.append(paragraph)
        size += len(paragraph) + 2
    if current:
        yield "\n\n".join(current)


def _tail(text: str, overlap: int) -> str:
    """The end of ``text``, at most ``overlap`` characters, starting at a sentence or word."""
    if overlap <= 0:
        return ""
    if len(text) <= overlap:
        return text
    window = text[-overlap:]
    sentence = _SENTENCE_END.search(window)
    if sentence is not None and sentence.end() < len(window):
        return window[sentence.end() :].strip()
    space = window.find(" ")
    return window[space + 1 :].strip() if space >= 0 else ""
