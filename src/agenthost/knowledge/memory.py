"""``MemoryKnowledgeIndex``: knowledge bases in process memory, ranked with Okapi BM25.

For tests, ``memory://`` deployments and the Redis store (which has no full-text
search: there the shipped docs are kept here, per process). The title and
heading count as part of every chunk's text, with the heading twice, the way
the SQL backends weight them higher. Ranking a few thousand chunks in Python
takes milliseconds; this is not meant for large corpora.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from agenthost.clock import Clock, SystemClock
from agenthost.knowledge.base import (
    ChunkId,
    DocumentInfo,
    Frequencies,
    Hit,
    IndexedDocument,
    KnowledgeBaseInfo,
)
from agenthost.knowledge.bm25 import score
from agenthost.knowledge.terms import stem, stems


@dataclass(frozen=True, slots=True)
class _Entry:
    hit: Hit
    terms: Counter[str]
    length: int


@dataclass
class _Document:
    info: DocumentInfo
    entries: list[_Entry] = field(default_factory=list)


class MemoryKnowledgeIndex:
    backend = "memory"

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._bases: dict[str, dict[str, _Document]] = {}
        self._next_id = 1

    async def search(self, query: str, *, kb: str, limit: int = 5) -> list[Hit]:
        wanted = set(stems(query))
        entries = [e for d in self._bases.get(kb, {}).values() for e in d.entries]
        if not wanted or not entries:
            return []
        average = sum(e.length for e in entries) / len(entries)
        counts = Counter(t for e in entries for t in wanted if t in e.terms)
        scored: list[tuple[float, _Entry]] = []
        for entry in entries:
            found = score(
                wanted,
                entry.terms,
                entry.length,
                counts=counts,
                total=len(entries),
                average_length=average,
            )
            if found > 0:
                scored.append((found, entry))
        scored.sort(key=lambda pair: (-pair[0], pair[1].hit.chunk_id))
        return [_with_score(entry.hit, score) for score, entry in scored[:limit]]

    async def read_document(self, source: str, *, kb: str) -> list[Hit]:
        document = self._bases.get(kb, {}).get(source)
        return [entry.hit for entry in document.entries] if document else []

    async def frequencies(self, words: Sequence[str], *, kb: str) -> Frequencies:
        entries = [e for d in self._bases.get(kb, {}).values() for e in d.entries]
        counts = {w: sum(1 for e in entries if stem(w.lower()) in e.terms) for w in words}
        return Frequencies(len(entries), counts)

    async def hashes(self, kb: str) -> dict[str, str]:
        return {s: d.info.content_hash for s, d in self._bases.get(kb, {}).items()}

    async def put(self, kb: str, document: IndexedDocument) -> bool:
        documents = self._bases.setdefault(kb, {})
        old = documents.get(document.source)
        if old is not None and old.info.content_hash == document.content_hash:
            return False
        info = DocumentInfo(
            document.source,
            document.title,
            document.content_hash,
            len(document.chunks),
            self._clock.now(),
        )
        stored = _Document(info)
        for chunk in document.chunks:
            hit = Hit(
                ChunkId(self._next_id),
                document.source,
                document.title,
                chunk.heading,
                chunk.position,
                chunk.text,
                0.0,
            )
            self._next_id += 1
            terms = stems(f"{document.title} {chunk.heading} {chunk.heading} {chunk.text}")
            stored.entries.append(_Entry(hit, Counter(terms), len(terms)))
        documents[document.source] = stored
        return True

    async def remove(self, kb: str, sources: Sequence[str] | None = None) -> int:
        documents = self._bases.get(kb, {})
        if sources is None:
            return len(self._bases.pop(kb, {}))
        removed = [documents.pop(s) for s in set(sources) if s in documents]
        if not documents:
            self._bases.pop(kb, None)
        return len(removed)

    async def bases(self) -> list[KnowledgeBaseInfo]:
        return [
            KnowledgeBaseInfo(
                name,
                len(documents),
                sum(d.info.chunks for d in documents.values()),
                _latest(d.info.ingested_at for d in documents.values()),
            )
            for name, documents in sorted(self._bases.items())
        ]

    async def documents(self, kb: str) -> list[DocumentInfo]:
        return [d.info for _, d in sorted(self._bases.get(kb, {}).items())]


def _with_score(hit: Hit, score: float) -> Hit:
    return replace(hit, score=score)


def _latest(times: Iterable[datetime]) -> datetime | None:
    return max(times, default=None)
