"""Reading a file into a ``ParsedDocument``: Markdown, plain text, HTML and PDF.

Each reader keeps the structure a chunk needs: the title, and sections under
their heading path (``Chapter > Section``; the title itself is left out of the
path). HTML is parsed with Beautiful Soup (the standard library's parser
underneath, so no compiled dependency) and turned into the same light Markdown
the Markdown reader splits; PDF text comes from pypdf, one section per page,
since a PDF keeps no headings. Readers are plain blocking functions: callers run
them in a worker thread.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

from agenthost.errors import KnowledgeError
from agenthost.knowledge.base import HEADING_SEPARATOR, ParsedDocument, Section

Reader = Callable[[bytes, str], ParsedDocument]
"""``reader(data, fallback_title)``: the parsed document."""

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_BLOCK_TAGS = (
    "p", "div", "section", "article", "main", "table", "tr", "ul", "ol", "dl", "dt", "dd",
    "blockquote", "figure", "form", "header", "footer", "aside",
)  # fmt: skip


def read_markdown(data: bytes, fallback_title: str) -> ParsedDocument:
    return parse_markdown(_decode(data), fallback_title)


def read_text(data: bytes, fallback_title: str) -> ParsedDocument:
    return ParsedDocument(fallback_title, (Section("", _decode(data)),))


def read_html(data: bytes, fallback_title: str) -> ParsedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(data), "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "nav"]):
        tag.decompose()
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    for pre in soup.find_all("pre"):
        pre.replace_with(f"\n\n```\n{pre.get_text()}\n```\n\n")
    for level in range(1, 7):
        for heading in soup.find_all(f"h{level}"):
            heading.replace_with(f"\n\n{'#' * level} {heading.get_text(' ', strip=True)}\n\n")
    for item in soup.find_all("li"):
        item.insert_before("\n- ")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for block in soup.find_all(_BLOCK_TAGS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")
    body = soup.find("body") or soup
    text = "\n".join(line.strip() for line in body.get_text().splitlines())
    parsed = parse_markdown(text, title or fallback_title)
    return ParsedDocument(title or parsed.title, parsed.sections)


def read_pdf(data: bytes, fallback_title: str) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        title = (reader.metadata.title if reader.metadata else None) or fallback_title
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as error:
        raise KnowledgeError(f"not a readable PDF ({type(error).__name__})") from None
    sections = tuple(
        Section(f"page {number}", text) for number, text in enumerate(pages, 1) if text.strip()
    )
    return ParsedDocument(str(title).strip() or fallback_title, sections)


READERS: dict[str, Reader] = {
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".txt": read_text,
    ".text": read_text,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
}


def reader_for(path: Path) -> Reader | None:
    """The reader for a file, by its extension; ``None`` for a format we do not read."""
    return READERS.get(path.suffix.lower())


def parse_markdown(text: str, fallback_title: str) -> ParsedDocument:
    """Sections under ATX headings (``#`` ... ``######``); fenced code is never a heading."""
    title = ""
    path: list[tuple[int, str]] = []
    sections: list[Section] = []
    lines: list[str] = []
    fenced = False

    def flush() -> None:
        body = "\n".join(lines).strip()
        if body:
            kept = [name for level, name in path if (level, name) != (1, title)]
            heading = HEADING_SEPARATOR.join(kept)
            sections.append(Section(heading, body))
        lines.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        if heading is None:
            lines.append(_LINK.sub(r"\1", line))
            continue
        flush()
        level, name = len(heading.group(1)), _LINK.sub(r"\1", heading.group(2)).strip("` ")
        if level == 1 and not title:
            title = name
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, name))
    flush()
    return ParsedDocument(title or fallback_title, tuple(sections))


def _decode(data: bytes) -> str:
    text = data.decode("utf-8-sig", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")
