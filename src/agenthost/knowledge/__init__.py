"""Knowledge bases for the ``faq`` and ``research`` agents: ingestion, retrieval, citations.

Files are read (``readers``), chunked along headings (``chunking``), and stored
beside the sessions by a ``KnowledgeIndex`` (``base``; SQLite FTS5, PostgreSQL
full-text search, or memory), whose ``Retriever`` side the agents search. See
docs/knowledge.md.
"""

from agenthost.knowledge.base import (
    Chunk,
    DocumentInfo,
    Hit,
    IndexedDocument,
    KnowledgeBaseInfo,
    KnowledgeIndex,
    Retriever,
)
from agenthost.knowledge.context import KnowledgeContext, KnowledgeOptions
from agenthost.knowledge.ingest import IngestReport, ingest
from agenthost.knowledge.memory import MemoryKnowledgeIndex
from agenthost.knowledge.url import open_knowledge_index

__all__ = [
    "Chunk",
    "DocumentInfo",
    "Hit",
    "IndexedDocument",
    "IngestReport",
    "KnowledgeBaseInfo",
    "KnowledgeContext",
    "KnowledgeIndex",
    "KnowledgeOptions",
    "MemoryKnowledgeIndex",
    "Retriever",
    "ingest",
    "open_knowledge_index",
]
