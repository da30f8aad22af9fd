"""Words of a question or passage, for lexical matching outside the database.

The SQL backends tokenise and stem in the database (FTS5's porter tokenizer,
PostgreSQL's ``english`` configuration). The memory index and the relevance
check need the same idea in Python: lower-case words, stop words dropped, and a
light suffix-stripping stemmer, so that "keys" meets "key" and "enabling" meets
"enabled". It is deliberately small: it only has to agree with itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORD = re.compile(r"[A-Za-z0-9]+(?:[_][A-Za-z0-9]+)*")

STOP_WORDS = frozenset(
    """
    a about above after again all am an and any are as at be because been before being
    below between both but by can could did do does doing done down during each else
    few for from further get gets got had has have having he her here hers him his how
    i if in into is it its itself just let me more most my no nor not now of off on
    once only or other our ours out over own same she should so some such than that the
    their theirs them then there these they this those through to too under until up
    use used uses using very was way we were what when where which while who whom why
    will with would you your yours yourself tell explain know want need make makes
    please much many one also may might must shall
    """.split()  # noqa: SIM905 - a word list reads better as text
)

_SUFFIXES = ("ations", "ation", "ingly", "edly", "ings", "ing", "ies", "ed", "es", "ly", "s")


def words(text: str) -> list[str]:
    """Lower-case word tokens (letters and digits; underscores join, as in ``max_tokens``)."""
    return [w.lower() for w in _WORD.findall(text)]


def stem(word: str) -> str:
    """A light stem: the longest listed suffix off, keeping at least three letters."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            return base + "y" if suffix == "ies" else base
    return word


def key_terms(text: str) -> list[str]:
    """The distinct content words of ``text``, in order, unstemmed (for database queries)."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word not in STOP_WORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)


def stems(text_or_words: str | Iterable[str]) -> list[str]:
    """Stems of the content words (with repeats, for term frequencies)."""
    tokens = words(text_or_words) if isinstance(text_or_words, str) else text_or_words
    return [stem(w) for w in tokens if w not in STOP_WORDS]
