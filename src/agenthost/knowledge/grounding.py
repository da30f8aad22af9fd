"""Grounded answers for a model that cannot search by itself: relevance, focus, prompt.

The embedded 270M model follows a short prompt and drifts on a long one, and it
cannot tell on its own that its sources do not answer a question. So the
decision to answer is taken here, before the model is called: a question is
answerable when one of the top passages holds enough of its content words,
each weighted by how rare it is in the knowledge base (inverse document
frequency: a word no document has, such as "Kubernetes" in a question the docs
do not cover, weighs most; "agenthost", in every other passage, weighs little).
That ``relevance`` must reach 0.45 by default (measured on the eval set, see
docs/knowledge.md).
Otherwise the reply is "I don't know" with the closest sources, and the model
is not called. When it is called, each passage is cut to its few sentences
that share most words with the question (``focus``), so two or three short
passages fit in a prompt the small model can still follow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from agenthost.knowledge.base import Frequencies, Hit, Retriever
from agenthost.knowledge.citing import label, sources_line
from agenthost.knowledge.terms import key_terms, stem, stems
from agenthost.messages import Citation

PASSAGE_CHARS = 360
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def question_stems(question: str) -> set[str]:
    return set(stems(key_terms(question)))


def word_weights(question: str, frequencies: Frequencies) -> dict[str, float]:
    """Each content word's stem with its inverse document frequency in the knowledge base."""
    weights: dict[str, float] = {}
    for word in key_terms(question):
        count = frequencies.counts.get(word, 0)
        weight = math.log((frequencies.chunks + 1) / (count + 0.5))
        weights[stem(word)] = max(weights.get(stem(word), 0.0), weight)
    return weights


def coverage(weights: Mapping[str, float], hit: Hit) -> float:
    """The weighted share of the question's words that ``hit`` holds."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    found = set(stems(f"{hit.title} {hit.heading} {hit.text}"))
    return sum(w for term, w in weights.items() if term in found) / total


async def relevance(retriever: Retriever, question: str, hits: Sequence[Hit], *, kb: str) -> float:
    """How well the best of ``hits`` covers the question (0: not at all, 1: every word)."""
    if not hits:
        return 0.0
    frequencies = await retriever.frequencies(key_terms(question), kb=kb)
    weights = word_weights(question, frequencies)
    return max(coverage(weights, hit) for hit in hits)


def focus(question: str, text: str, chars: int = PASSAGE_CHARS) -> str:
    """The run of consecutive sentences, within ``chars``, that shares most words with it."""
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    if not sentences:
        return ""
    wanted = question_stems(question)
    scores = [len(wanted & set(stems(s))) for s in sentences]
    best, best_score = (0, 1), -1
    for start in range(len(sentences)):
        size, score = 0, 0
        for end in range(start, len(sentences)):
            size += len(sentences[end]) + 1
            if size > chars and end > start:
                break
            score += scores[end]
            if score > best_score:
                best, best_score = (start, end + 1), score
    passage = " ".join(sentences[best[0] : best[1]])
    return passage if len(passage) <= chars else passage[:chars].rsplit(" ", 1)[0] + "…"


def quote(question: str, pairs: Sequence[tuple[Citation, Hit]], chars: int = 240) -> str:
    """The best passage's most relevant sentences as a Markdown quote, with its number."""
    if not pairs:
        return ""
    citation, hit = pairs[0]
    text = " ".join(focus(question, hit.text, chars).split())
    return f"> {text} [{citation.n}]"


def sources_prompt(question: str, pairs: Sequence[tuple[Citation, Hit]]) -> str:
    """The sources as the small model reads them: numbered, named, cut to their best part."""
    lines = ["Sources:"]
    seen: set[int] = set()
    for citation, hit in pairs:
        if hit.chunk_id in seen:
            continue
        seen.add(hit.chunk_id)
        lines.append(f"[{citation.n}] ({label(citation)}) {focus(question, hit.text)}")
    return "\n".join(lines)


def refusal(citations: Sequence[Citation]) -> str:
    """The reply when nothing relevant was found: no guess, and where to look instead."""
    text = "I don't know: the documents I can search do not answer that."
    if citations:
        return f"{text}\n\nClosest s{sources_line(citations)[1:]}"
    return text
