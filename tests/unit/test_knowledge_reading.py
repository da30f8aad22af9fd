"""Reading each format into sections, and chunking them along headings and paragraphs."""

from __future__ import annotations

import itertools

import pytest

from agenthost.errors import KnowledgeError
from agenthost.knowledge.base import ParsedDocument, Section
from agenthost.knowledge.chunking import chunk_document
from agenthost.knowledge.readers import read_html, read_markdown, read_pdf, read_text
from tests.support.documents import HTML, MARKDOWN, TEXT, pdf_bytes


def test_markdown_sections_follow_the_heading_path() -> None:
    parsed = read_markdown(MARKDOWN.encode(), "fallback")
    assert parsed.title == "Gardening guide"
    headings = [s.heading for s in parsed.sections]
    assert headings == ["", "Tomatoes", "Tomatoes > Pests", "Roses"]
    pests = parsed.sections[2].text
    assert "Aphids" in pests
    assert "# not a heading: code" in pests  # a fenced line is never a heading


def test_markdown_without_a_title_uses_the_file_name_and_drops_link_targets() -> None:
    parsed = read_markdown(b"Read [the guide](https://example.com/guide).\n", "notes")
    assert parsed.title == "notes"
    assert parsed.sections == (Section("", "Read the guide."),)


def test_text_is_one_section_titled_after_the_file() -> None:
    parsed = read_text(TEXT.encode(), "bread")
    assert parsed.title == "bread"
    assert "yeast" in parsed.sections[0].text


def test_html_keeps_title_headings_lists_and_code_and_drops_scripts() -> None:
    parsed = read_html(HTML.encode(), "fallback")
    assert parsed.title == "Bicycle care"
    text = "\n".join(s.text for s in parsed.sections)
    assert "Keep the chain clean." in text
    assert "not text" not in text
    assert "color: red" not in text
    assert "Home | About" not in text
    tyres = next(s for s in parsed.sections if s.heading == "Tyres")
    assert "- Check weekly" in tyres.text
    assert "pump --psi 60" in tyres.text


def test_pdf_is_one_section_per_page() -> None:
    parsed = read_pdf(pdf_bytes("First page text.", "Second page text."), "fallback")
    assert parsed.title == "Telescope manual"
    assert [(s.heading, s.text) for s in parsed.sections] == [
        ("page 1", "First page text."),
        ("page 2", "Second page text."),
    ]


def test_a_broken_pdf_is_a_knowledge_error() -> None:
    with pytest.raises(KnowledgeError, match="not a readable PDF"):
        read_pdf(b"%PDF-1.4 this is not really a pdf", "broken")


def test_chunks_never_span_sections_and_name_their_heading() -> None:
    chunks = chunk_document(read_markdown(MARKDOWN.encode(), "x"))
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert chunks[0].heading == "Gardening guide"  # text before the first section heading
    assert {c.heading for c in chunks} >= {"Tomatoes", "Tomatoes > Pests", "Roses"}
    assert all("Roses" not in c.text or c.heading == "Roses" for c in chunks)


def test_long_sections_are_packed_by_paragraph_with_overlap() -> None:
    paragraphs = [f"Paragraph {i} says something. It ends here." for i in range(30)]
    document = ParsedDocument("t", (Section("Long", "\n\n".join(paragraphs)),))
    chunks = chunk_document(document, max_chars=200, overlap=60)
    assert len(chunks) > 5
    assert all(len(c.text) <= 200 for c in chunks)
    for before, after in itertools.pairwise(chunks):
        assert before.text.endswith(after.text.split("\n\n")[0])  # the overlap
    joined = " ".join(c.text for c in chunks)
    assert all(p in joined for p in paragraphs)


def test_a_paragraph_without_sentences_is_cut_at_spaces() -> None:
    words = " ".join(["word"] * 400)
    chunks = chunk_document(ParsedDocument("t", (Section("", words),)), max_chars=100)
    assert all(len(c.text) <= 100 for c in chunks)
    assert sum(c.text.count("word") for c in chunks) >= 400
