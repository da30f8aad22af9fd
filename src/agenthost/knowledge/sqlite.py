"""``SQLiteKnowledgeIndex``: the knowledge index in SQLite, searched with FTS5 and BM25.

The FTS5 table (``knowledge_fts``) holds each chunk's title, heading and text
under the chunk's id, tokenised with the porter stemmer. A question becomes an
OR of its content words, so a passage that has most of them ranks first without
needing all; ``bm25()`` weighs a match in the title or heading above one in the
text. Queries run on aiosqlite's thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from agenthost.clock import Clock
from agenthost.knowledge.base import Hit
from agenthost.knowledge.sql import HIT_COLUMNS, SQLKnowledgeIndex, hit_row
from agenthost.knowledge.terms import key_terms
from agenthost.stores.base import StoreOptions
from agenthost.stores.sql_database import SQLConnection, migrate
from agenthost.stores.sqlite import SQLiteDatabase

WEIGHTS = (2.0, 3.0, 1.0)
"""bm25() column weights: title, heading, text."""


class SQLiteKnowledgeIndex(SQLKnowledgeIndex):
    async def search(self, query: str, *, kb: str, limit: int = 5) -> list[Hit]:
        terms = key_terms(query)
        if not terms:
            return []
        match = " OR ".join(f'"{term}"' for term in terms)
        title, heading, text = WEIGHTS
        async with self._db.read() as c:
            rows = await c.fetchall(
                f"SELECT {HIT_COLUMNS}, -bm25(knowledge_fts, {title}, {heading}, {text}) AS score"
                " FROM knowledge_fts f JOIN knowledge_chunks c ON c.id = f.rowid"
                " JOIN knowledge_documents d ON d.id = c.document_id"
                " WHERE knowledge_fts MATCH ? AND d.kb = ? ORDER BY score DESC, c.id LIMIT ?",
                match,
                kb,
                limit,
            )
        return [hit_row(row) for row in rows]

    async def _count(self, c: SQLConnection, word: str, kb: str) -> int:
        row = await c.fetchone(
            "SELECT COUNT(*) FROM knowledge_fts f JOIN knowledge_chunks c ON c.id = f.rowid"
            " JOIN knowledge_documents d ON d.id = c.document_id"
            " WHERE knowledge_fts MATCH ? AND d.kb = ?",
            f'"{word}"',
            kb,
        )
        return int(row[0]) if row else 0

    async def _index_chunk(
        self, c: SQLConnection, chunk_id: int, title: str, heading: str, text: str
    ) -> None:
        await c.execute(
            "INSERT INTO knowledge_fts (rowid, title, heading, text) VALUES (?, ?, ?, ?)",
            chunk_id,
            title,
            heading,
            text,
        )

    async def _delete(self, c: SQLConnection, document_id: int) -> None:
        await c.execute(
            "DELETE FROM knowledge_fts WHERE rowid IN"
            " (SELECT id FROM knowledge_chunks WHERE document_id = ?)",
            document_id,
        )
        await super()._delete(c, document_id)


@asynccontextmanager
async def open_sqlite_index(
    path: Path, *, clock: Clock, options: StoreOptions
) -> AsyncIterator[SQLiteKnowledgeIndex]:
    """The index in the SQLite file of the sessions (migrated first, like the store)."""
    db = SQLiteDatabase(path, timeout=options.timeout)
    try:
        await db.open()
        await migrate(db, clock=clock, migrate=options.migrate)
        yield SQLiteKnowledgeIndex(db, clock=clock)
    finally:
        await db.close()
