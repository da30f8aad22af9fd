"""The PostgreSQL schema, as an ordered list of migrations.

Every query the store makes has an index: messages by (session_id, seq) for
windows and pages, sessions by (owner, created_at, id) for listing, running runs
by a partial index for crash recovery, idempotency keys by expiry for pruning.

Version 2 adds the knowledge bases (``agenthost.knowledge.postgres``):
documents and their chunks, each chunk with a weighted ``tsvector`` (title and
heading above text, ``english`` stemming) under a GIN index.
"""

from __future__ import annotations

from agenthost.stores.migrations import Migration

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "sessions, messages, runs, leases, idempotency keys, API keys",
        (
            """
            CREATE TABLE sessions (
                id uuid PRIMARY KEY,
                owner uuid,
                agent text NOT NULL,
                title text NOT NULL DEFAULT '',
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL,
                message_count bigint NOT NULL DEFAULT 0,
                total_tokens bigint NOT NULL DEFAULT 0,
                metadata text NOT NULL DEFAULT '{}'
            )
            """,
            "CREATE INDEX sessions_by_owner ON sessions (owner, created_at DESC, id DESC)",
            "CREATE INDEX sessions_by_created ON sessions (created_at DESC, id DESC)",
            """
            CREATE TABLE messages (
                session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                seq bigint NOT NULL,
                id uuid NOT NULL UNIQUE,
                body text NOT NULL,
                tokens integer NOT NULL,
                run_id uuid,
                created_at timestamptz NOT NULL,
                PRIMARY KEY (session_id, seq)
            )
            """,
            """
            CREATE TABLE runs (
                id uuid PRIMARY KEY,
                session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                status text NOT NULL CHECK (
                    status IN ('running', 'completed', 'failed', 'cancelled', 'interrupted')
                ),
                model text NOT NULL,
                prompt_tokens bigint NOT NULL DEFAULT 0,
                completion_tokens bigint NOT NULL DEFAULT 0,
                error text,
                started_at timestamptz NOT NULL,
                finished_at timestamptz
            )
            """,
            "CREATE INDEX runs_by_session ON runs (session_id)",
            "CREATE INDEX runs_running ON runs (session_id) WHERE status = 'running'",
            """
            CREATE TABLE session_leases (
                session_id uuid PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
                holder text NOT NULL,
                token text NOT NULL,
                expires_at timestamptz NOT NULL
            )
            """,
            "CREATE INDEX session_leases_by_holder ON session_leases (holder)",
            """
            CREATE TABLE idempotency_keys (
                owner text NOT NULL,
                key text NOT NULL,
                fingerprint text NOT NULL,
                run_id uuid NOT NULL,
                created_at timestamptz NOT NULL,
                expires_at timestamptz NOT NULL,
                PRIMARY KEY (owner, key)
            )
            """,
            "CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at)",
            """
            CREATE TABLE api_keys (
                id uuid PRIMARY KEY,
                name text NOT NULL,
                prefix text NOT NULL,
                key_hash text NOT NULL UNIQUE,
                rpm integer,
                tpm integer,
                max_streams integer,
                admin boolean NOT NULL DEFAULT false,
                created_at timestamptz NOT NULL,
                last_used_at timestamptz,
                revoked_at timestamptz
            )
            """,
        ),
    ),
    Migration(
        2,
        "knowledge bases: documents, chunks and their full-text index",
        (
            """
            CREATE TABLE knowledge_documents (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                kb text NOT NULL,
                source text NOT NULL,
                title text NOT NULL,
                content_hash text NOT NULL,
                chunk_count integer NOT NULL,
                ingested_at timestamptz NOT NULL,
                UNIQUE (kb, source)
            )
            """,
            """
            CREATE TABLE knowledge_chunks (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                document_id bigint NOT NULL
                    REFERENCES knowledge_documents (id) ON DELETE CASCADE,
                position integer NOT NULL,
                heading text NOT NULL,
                text text NOT NULL,
                search tsvector NOT NULL DEFAULT ''::tsvector
            )
            """,
            "CREATE INDEX knowledge_chunks_by_document ON knowledge_chunks (document_id, position)",
            "CREATE INDEX knowledge_chunks_search ON knowledge_chunks USING GIN (search)",
        ),
    ),
)
