"""The knowledge seams, ``Retriever`` and ``KnowledgeIndex``, and the values they trade in.

A knowledge base is a named set of documents (``kb``), each split into chunks
that keep where they came from: the document's source path and title, the
heading path of the section, and the position in the document. The index stores
them beside the sessions (SQLite FTS5, PostgreSQL full-text search) or in memory,
and searches them lexically; every backend ranks with its own scoring, so
callers use a hit's rank and text, never compare scores across backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NewType, Protocol

ChunkId = NewType("ChunkId", int)
HEADING_SEPARATOR = " > "


@dataclass(frozen=True, slots=True)
class Section:
    """A part of a parsed document under one heading path (``""`` before the first heading)."""

    heading: str
    text: str


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    title: str
    sections: tuple[Section, ...]


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of a document: ``position`` counts from 0 in reading order."""

    position: int
    heading: str
    text: str


@dataclass(frozen=True, slots=True)
class IndexedDocument:
    """A document ready to store: its chunks and the hash of the file they came from."""

    source: str
    title: str
    content_hash: str
    chunks: tuple[Chunk, ...]


@dataclass(frozen=True, slots=True)
class Hit:
    """A chunk found by a search; ``score`` is the backend's own, higher is better."""

    chunk_id: ChunkId
    source: str
    title: str
    heading: str
    position: int
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    source: str
    title: str
    content_hash: str
    chunks: int
    ingested_at: datetime


@dataclass(frozen=True, slots=True)
class KnowledgeBaseInfo:
    name: str
    documents: int
    chunks: int
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class Frequencies:
    """How many chunks of a knowledge base hold each word, out of ``chunks``."""

    chunks: int
    counts: dict[str, int]


class Retriever(Protocol):
    """Finds passages for a question, reads a whole document back, and counts words."""

    async def search(self, query: str, *, kb: str, limit: int = 5) -> list[Hit]:
        """The chunks that best match ``query``, best first (empty when nothing matches)."""
        ...

    async def read_document(self, source: str, *, kb: str) -> list[Hit]:
        """Every chunk of one document in order; empty if there is no such document."""
        ...

    async def frequencies(self, words: Sequence[str], *, kb: str) -> Frequencies:
        """In how many chunks each word occurs (as the backend matches words: stemmed)."""
        ...


class KnowledgeIndex(Retriever, Protocol):
    """Where knowledge bases are stored: the retriever plus the writes of ingestion."""

    @property
    def backend(self) -> str:
        """``memory``, ``sqlite`` or ``postgres``."""
        ...

    async def hashes(self, kb: str) -> dict[str, str]:
        """Each stored document's source and content hash."""
        ...

    async def put(self, kb: str, document: IndexedDocument) -> bool:
        """Store the document, replacing its old chunks; False if that hash is already stored."""
        ...

    async def remove(self, kb: str, sources: Sequence[str] | None = None) -> int:
        """Delete these documents (``None``: the whole knowledge base); how many went."""
        ...

    async def bases(self) -> list[KnowledgeBaseInfo]: ...

    async def documents(self, kb: str) -> list[DocumentInfo]: ...
