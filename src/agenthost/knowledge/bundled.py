"""agenthost's own documentation, shipped as the default knowledge base.

Where the docs are: in an installed wheel they are package data
(``agenthost/docs``, copied from the repository's ``docs/`` at build time by
hatch's ``force-include``); in a checkout or an editable install, the
repository's ``docs/`` itself is read, so edits show up at the next start.
``sync_bundled_docs`` brings a knowledge base up to date with them at startup:
unchanged files cost one hash each, changed ones are re-chunked, deleted ones
removed. Their sources read ``docs/<file>`` either way.
"""

from __future__ import annotations

import logging
from pathlib import Path

from agenthost.knowledge.base import KnowledgeIndex
from agenthost.knowledge.ingest import IngestReport, ingest

logger = logging.getLogger(__name__)

_PACKAGE = Path(__file__).resolve().parents[1]


def bundled_docs_dir() -> Path | None:
    """The shipped docs folder, or ``None`` when neither copy is there."""
    packaged = _PACKAGE / "docs"
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE.parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / "docs").is_dir():
        return checkout / "docs"
    return None


async def sync_bundled_docs(index: KnowledgeIndex, *, kb: str) -> IngestReport | None:
    """Ingest the shipped docs into ``kb`` (a no-op when nothing changed)."""
    docs = bundled_docs_dir()
    if docs is None:
        logger.warning("agenthost's docs are not installed: the knowledge base starts empty")
        return None
    report = await ingest(index, [docs], kb=kb, relative_to=docs.parent, prune=True)
    if report.changed:
        logger.info(
            "knowledge base %r: agenthost docs synced (%d added, %d updated, %d removed)",
            kb,
            len(report.added),
            len(report.updated),
            len(report.removed),
        )
    return report
