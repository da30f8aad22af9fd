"""``PostgresKnowledgeIndex``: the knowledge index in PostgreSQL full-text search.

Each chunk has a ``tsvector`` (``english`` configuration) with the title and
heading weighted above the text, under a GIN index. A question becomes an OR
of its content words, ranked by ``ts_rank_cd`` (cover density: passages where
the words stand close together rank higher), normalised by the passage's length.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from agenthost.clock import Clock
from agenthost.knowledge.base import Hit
from agenthost.knowledge.bm25 import score
from agenthost.knowledge.sql import HIT_COLUMNS, SQLKnowledgeIndex, hit_row
from agenthost.knowledge.terms import key_terms, stem, stems
from agenthost.stores.base import StoreOptions
from agenthost.stores.sql_database import SQLConnection, migrate

CANDIDATES = 50


class PostgresKnowledgeIndex(SQLKnowledgeIndex):
    async def search(self, query: str, *, kb: str, limit: int = 5) -> list[Hit]:
        terms = key_terms(query)
        if not terms:
            return []
        async with self._db.read() as c:
            rows = await c.fetchall(
                f"SELECT {HIT_COLUMNS}, ts_rank(c.search, q) AS score"
                " FROM knowledge_chunks c JOIN knowledge_documents d ON d.id = c.document_id,"
                " to_tsquery('english', ?) q"
                " WHERE d.kb = ? AND c.search @@ q ORDER BY score DESC, c.id LIMIT ?",
                " | ".join(terms),
                kb,
                max(CANDIDATES, limit),
            )
        if not rows:
            return []
        candidates = [hit_row(row) for row in rows]
        frequencies = await self.frequencies(terms, kb=kb)
        counts = {stem(word): n for word, n in frequencies.counts.items()}
        texts = [stems(f"{h.title} {h.heading} {h.heading} {h.text}") for h in candidates]
        average = sum(len(t) for t in texts) / len(texts)
        ranked = sorted(
            (
                score(
                    counts,
                    Counter(words),
                    len(words),
                    counts=counts,
                    total=frequencies.chunks,
                    average_length=average,
                ),
                -hit.chunk_id,
                hit,
            )
            for words, hit in zip(texts, candidates, strict=True)
        )
        return [replace(hit, score=found) for found, _, hit in reversed(ranked)][:limit]

    async def _count(self, c: SQLConnection, word: str, kb: str) -> int:
        row = await c.fetchone(
            "SELECT COUNT(*) FROM knowledge_chunks c"
            " JOIN knowledge_documents d ON d.id = c.document_id"
            " WHERE d.kb = ? AND c.search @@ to_tsquery('english', ?)",
            kb,
            word,
        )
        return int(row[0]) if row else 0

    async def _index_chunk(
        self, c: SQLConnection, chunk_id: int, title: str, heading: str, text: str
    ) -> None:
        await c.execute(
            "UPDATE knowledge_chunks SET search ="
            " setweight(to_tsvector('english', ?), 'A')"
            " || setweight(to_tsvector('english', ?), 'A')"
            " || setweight(to_tsvector('english', ?), 'C') WHERE id = ?",
            title,
            heading,
            text,
            chunk_id,
        )


@asynccontextmanager
async def open_postgres_index(
    url: str, *, clock: Clock, options: StoreOptions
) -> AsyncIterator[PostgresKnowledgeIndex]:
    """The index in the PostgreSQL database of the sessions (migrated first, like the store)."""
    from agenthost.stores.postgres import PostgresDatabase

    db = await PostgresDatabase.connect(url, options=options)
    try:
        await migrate(db, clock=clock, migrate=options.migrate)
        yield PostgresKnowledgeIndex(db, clock=clock)
    finally:
        await db.close()
