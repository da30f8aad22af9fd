"""``SQLKnowledgeIndex``: knowledge bases in the sessions' SQL database (SQLite or PostgreSQL).

Two tables (created by the stores' migrations, version 2): ``knowledge_documents``
(one row per ingested file: knowledge base, source, title, content hash) and
``knowledge_chunks`` (its passages, in order). Replacing a document is one
write transaction: the old row goes (its chunks with it) and the new rows come
in, so a reader sees the old version or the new, never half of one. What
differs per database is the full-text index, kept by the subclasses: an FTS5
table in SQLite, a generated ``tsvector`` column with a GIN index in PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from agenthost.clock import Clock
from agenthost.knowledge.base import (
    ChunkId,
    DocumentInfo,
    Frequencies,
    Hit,
    IndexedDocument,
    KnowledgeBaseInfo,
)
from agenthost.stores.sql_database import (
    DuplicateKeyError,
    Row,
    SQLConnection,
    SQLDatabase,
    read_optional_time,
    read_time,
)

HIT_COLUMNS = "c.id, d.source, d.title, c.heading, c.position, c.text"


class SQLKnowledgeIndex:
    def __init__(self, db: SQLDatabase, *, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    @property
    def backend(self) -> str:
        return self._db.backend

    async def search(self, query: str, *, kb: str, limit: int = 5) -> list[Hit]:
        raise NotImplementedError  # pragma: no cover - each backend searches its own way

    async def read_document(self, source: str, *, kb: str) -> list[Hit]:
        async with self._db.read() as c:
            rows = await c.fetchall(
                f"SELECT {HIT_COLUMNS}, 0.0 FROM knowledge_chunks c"
                " JOIN knowledge_documents d ON d.id = c.document_id"
                " WHERE d.kb = ? AND d.source = ? ORDER BY c.position",
                kb,
                source,
            )
        return [hit_row(row) for row in rows]

    async def frequencies(self, words: Sequence[str], *, kb: str) -> Frequencies:
        async with self._db.read() as c:
            total = await c.fetchone(
                "SELECT COALESCE(SUM(chunk_count), 0) FROM knowledge_documents WHERE kb = ?", kb
            )
            counts = {word: await self._count(c, word, kb) for word in words}
        return Frequencies(int(total[0]) if total else 0, counts)

    async def _count(self, c: SQLConnection, word: str, kb: str) -> int:
        """Chunks of ``kb`` that match ``word`` in the full-text index."""
        raise NotImplementedError  # pragma: no cover - each backend counts its own way

    async def hashes(self, kb: str) -> dict[str, str]:
        async with self._db.read() as c:
            rows = await c.fetchall(
                "SELECT source, content_hash FROM knowledge_documents WHERE kb = ?", kb
            )
        return {source: content_hash for source, content_hash in rows}

    async def put(self, kb: str, document: IndexedDocument) -> bool:
        try:
            return await self._put(kb, document)
        except DuplicateKeyError:  # another process inserted it first: see what it stored
            return await self._put(kb, document)

    async def remove(self, kb: str, sources: Sequence[str] | None = None) -> int:
        async with self._db.write() as c:
            if sources is None:
                rows = await c.fetchall("SELECT id FROM knowledge_documents WHERE kb = ?", kb)
            else:
                rows = []
                for source in sorted(set(sources)):
                    rows += await c.fetchall(
                        "SELECT id FROM knowledge_documents WHERE kb = ? AND source = ?",
                        kb,
                        source,
                    )
            for (document_id,) in rows:
                await self._delete(c, document_id)
        return len(rows)

    async def bases(self) -> list[KnowledgeBaseInfo]:
        async with self._db.read() as c:
            rows = await c.fetchall(
                "SELECT kb, COUNT(*), SUM(chunk_count), MAX(ingested_at)"
                " FROM knowledge_documents GROUP BY kb ORDER BY kb"
            )
        return [
            KnowledgeBaseInfo(kb, int(docs), int(chunks or 0), read_optional_time(latest))
            for kb, docs, chunks, latest in rows
        ]

    async def documents(self, kb: str) -> list[DocumentInfo]:
        async with self._db.read() as c:
            rows = await c.fetchall(
                "SELECT source, title, content_hash, chunk_count, ingested_at"
                " FROM knowledge_documents WHERE kb = ? ORDER BY source",
                kb,
            )
        return [
            DocumentInfo(source, title, content_hash, int(chunks), read_time(at))
            for source, title, content_hash, chunks, at in rows
        ]

    async def _put(self, kb: str, document: IndexedDocument) -> bool:
        async with self._db.write() as c:
            old = await c.fetchone(
                "SELECT id, content_hash FROM knowledge_documents WHERE kb = ? AND source = ?",
                kb,
                document.source,
            )
            if old is not None:
                if old[1] == document.content_hash:
                    return False
                await self._delete(c, old[0])
            row = await c.fetchone(
                "INSERT INTO knowledge_documents"
                " (kb, source, title, content_hash, chunk_count, ingested_at)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                kb,
                document.source,
                document.title,
                document.content_hash,
                len(document.chunks),
                self._db.time(self._clock.now()),
            )
            assert row is not None
            document_id = row[0]
            for chunk in document.chunks:
                inserted = await c.fetchone(
                    "INSERT INTO knowledge_chunks (document_id, position, heading, text)"
                    " VALUES (?, ?, ?, ?) RETURNING id",
                    document_id,
                    chunk.position,
                    chunk.heading,
                    chunk.text,
                )
                assert inserted is not None
                await self._index_chunk(c, inserted[0], document.title, chunk.heading, chunk.text)
        return True

    async def _index_chunk(
        self, c: SQLConnection, chunk_id: int, title: str, heading: str, text: str
    ) -> None:
        """Add a chunk to the full-text index (nothing to do where the index is a column)."""

    async def _delete(self, c: SQLConnection, document_id: int) -> None:
        """Delete a document; its chunks go by ``ON DELETE CASCADE``."""
        await c.execute("DELETE FROM knowledge_documents WHERE id = ?", document_id)


def hit_row(row: Row) -> Hit:
    chunk_id, source, title, heading, position, text, score = row
    return Hit(ChunkId(int(chunk_id)), source, title, heading, int(position), text, float(score))
