"""What ``agenthost ingest`` and ``agenthost kb`` do, apart from printing.

Each opens the knowledge index the settings name (``AGENTHOST_KNOWLEDGE_DATABASE_URL``,
else ``AGENTHOST_DATABASE_URL``) for one call and closes it. Ingesting needs a
SQL database: a memory or Redis store would forget the documents on exit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from agenthost.knowledge.base import DocumentInfo, KnowledgeBaseInfo
from agenthost.knowledge.ingest import IngestReport, Progress, ingest
from agenthost.knowledge.url import open_knowledge_index, require_persistent
from agenthost.settings import Settings


async def ingest_paths(
    settings: Settings,
    paths: Sequence[Path],
    *,
    kb: str,
    prune: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    url = settings.knowledge_url()
    require_persistent(url)
    async with open_knowledge_index(url, options=settings.store_options()) as index:
        return await ingest(index, paths, kb=kb, prune=prune, progress=progress)


async def list_bases(settings: Settings) -> list[KnowledgeBaseInfo]:
    url = settings.knowledge_url()
    require_persistent(url)
    async with open_knowledge_index(url, options=settings.store_options()) as index:
        return await index.bases()


async def list_documents(settings: Settings, kb: str) -> list[DocumentInfo]:
    url = settings.knowledge_url()
    require_persistent(url)
    async with open_knowledge_index(url, options=settings.store_options()) as index:
        return await index.documents(kb)


async def remove(settings: Settings, kb: str, sources: Sequence[str] | None) -> int:
    url = settings.knowledge_url()
    require_persistent(url)
    async with open_knowledge_index(url, options=settings.store_options()) as index:
        return await index.remove(kb, sources)
