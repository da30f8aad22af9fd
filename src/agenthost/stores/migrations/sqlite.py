"""The SQLite schema, as an ordered list of migrations.

Times are integer microseconds since the Unix epoch (UTC): exact, sortable and
compact. Messages are keyed by (session_id, seq), so reading a window is a
backwards walk of one index, whatever the length of the history.

Version 2 adds the knowledge bases (``agenthost.knowledge.sqlite``): documents,
their chunks, and an FTS5 index of the chunks (porter stemming, BM25 ranking)
whose rowid is the chunk's id.
"""

from __future__ import annotations

from agenthost.stores.migrations import Migration

SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "sessions, messages, runs, leases, idempotency keys, API keys",
        (
            """
            CREATE TABLE sessions (
                id TEXT PRIMARY KEY,
                owner TEXT,
                agent TEXT NOT NULL,
                title TEXT NOT NULL DEFAULT '',
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                message_count INTEGER NOT NULL DEFAULT 0,
                total_tokens INTEGER NOT NULL DEFAULT 0,
                metadata TEXT NOT NULL DEFAULT '{}'
            )
            """,
            "CREATE INDEX sessions_by_owner ON sessions (owner, created_at DESC, id DESC)",
            "CREATE INDEX sessions_by_created ON sessions (created_at DESC, id DESC)",
            """
            CREATE TABLE messages (
                session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                seq INTEGER NOT NULL,
                id TEXT NOT NULL UNIQUE,
                body TEXT NOT NULL,
                tokens INTEGER NOT NULL,
                run_id TEXT,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (session_id, seq)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE runs (
                id TEXT PRIMARY KEY,
                session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                status TEXT NOT NULL CHECK (
                    status IN ('running', 'completed', 'failed', 'cancelled', 'interrupted')
                ),
                model TEXT NOT NULL,
                prompt_tokens INTEGER NOT NULL DEFAULT 0,
                completion_tokens INTEGER NOT NULL DEFAULT 0,
                error TEXT,
                started_at INTEGER NOT NULL,
                finished_at INTEGER
            )
            """,
            "CREATE INDEX runs_by_session ON runs (session_id)",
            "CREATE INDEX runs_running ON runs (session_id) WHERE status = 'running'",
            """
            CREATE TABLE session_leases (
                session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
                holder TEXT NOT NULL,
                token TEXT NOT NULL,
                expires_at INTEGER NOT NULL
            )
            """,
            "CREATE INDEX session_leases_by_holder ON session_leases (holder)",
            """
            CREATE TABLE idempotency_keys (
                owner TEXT NOT NULL,
                key TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                run_id TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL,
                PRIMARY KEY (owner, key)
            )
            """,
            "CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at)",
            """
            CREATE TABLE api_keys (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                prefix TEXT NOT NULL,
                key_hash TEXT NOT NULL UNIQUE,
                rpm INTEGER,
                tpm INTEGER,
                max_streams INTEGER,
                admin INTEGER NOT NULL DEFAULT 0,
                created_at INTEGER NOT NULL,
                last_used_at INTEGER,
                revoked_at INTEGER
            )
            """,
        ),
    ),
    Migration(
        2,
        "knowledge bases: documents, chunks and their FTS5 index",
        (
            """
            CREATE TABLE knowledge_documents (
                id INTEGER PRIMARY KEY,
                kb TEXT NOT NULL,
                source TEXT NOT NULL,
                title TEXT NOT NULL,
                content_hash TEXT NOT NULL,
                chunk_count INTEGER NOT NULL,
                ingested_at INTEGER NOT NULL,
                UNIQUE (kb, source)
            )
            """,
            """
            CREATE TABLE knowledge_chunks (
                id INTEGER PRIMARY KEY,
                document_id INTEGER NOT NULL
                    REFERENCES knowledge_documents (id) ON DELETE CASCADE,
                position INTEGER NOT NULL,
                heading TEXT NOT NULL,
                text TEXT NOT NULL
            )
            """,
            "CREATE INDEX knowledge_chunks_by_document ON knowledge_chunks (document_id, position)",
            """
            CREATE VIRTUAL TABLE knowledge_fts USING fts5(
                title, heading, text, tokenize = 'porter unicode61'
            )
            """,
        ),
    ),
)
