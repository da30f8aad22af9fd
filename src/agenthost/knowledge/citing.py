"""Turning hits into numbered citations, and hits into text a model reads.

A citation names a section (source and heading); two hits from one section
share its number, and a section cited earlier in the turn keeps the number it
had, so ``[n]`` means one thing for the whole reply.
"""

from __future__ import annotations

from collections.abc import Sequence

from agenthost.knowledge.base import HEADING_SEPARATOR, Hit
from agenthost.messages import Citation

SNIPPET_CHARS = 240


def cite(hits: Sequence[Hit], cited: Sequence[Citation] = ()) -> list[tuple[Citation, Hit]]:
    """Each hit with its citation: known sections keep their ``n``, new ones come after."""
    numbers = {(c.source, c.heading): c.n for c in cited}
    next_n = max((c.n for c in cited), default=0) + 1
    pairs: list[tuple[Citation, Hit]] = []
    made: dict[tuple[str, str], Citation] = {}
    for hit in hits:
        key = (hit.source, hit.heading)
        if key not in made:
            n = numbers.get(key)
            if n is None:
                n, next_n = next_n, next_n + 1
            made[key] = Citation(n, hit.source, hit.heading, snippet(hit.text))
        pairs.append((made[key], hit))
    return pairs


def unique(citations: Sequence[Citation]) -> tuple[Citation, ...]:
    """The citations once each, in order of first appearance."""
    seen: dict[int, Citation] = {}
    for citation in citations:
        seen.setdefault(citation.n, citation)
    return tuple(seen.values())


def snippet(text: str, chars: int = SNIPPET_CHARS) -> str:
    """The start of a passage on one line, cut at a word, with an ellipsis when cut."""
    flat = " ".join(text.split())
    if len(flat) <= chars:
        return flat
    cut = flat.rfind(" ", 0, chars)
    return flat[: cut if cut > chars // 2 else chars].rstrip(" ,;:") + "…"


def label(citation: Citation) -> str:
    """``docs/security.md > API keys``: how a citation is named in a reply."""
    if citation.heading:
        return f"{citation.source}{HEADING_SEPARATOR}{citation.heading}"
    return citation.source


def sources_line(citations: Sequence[Citation]) -> str:
    """``Sources: [1] a.md > X; [2] b.md > Y``."""
    return "Sources: " + "; ".join(f"[{c.n}] {label(c)}" for c in citations)


def search_results(pairs: Sequence[tuple[Citation, Hit]]) -> str:
    """Search results as a tool result: each passage under its number, source and heading."""
    if not pairs:
        return "No passage matches. Try other words, or answer that the documents do not say."
    blocks = [f"[{c.n}] {label(c)}\n{hit.text}" for c, hit in pairs]
    return "\n\n".join(blocks)
