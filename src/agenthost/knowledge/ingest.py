"""Ingestion: files in, chunks stored, and nothing redone for a file that has not changed.

``ingest`` walks the given files and directories (Markdown, text, HTML, PDF),
hashes each file, and skips those whose hash the knowledge base already has.
A new or changed file is parsed and chunked in a worker thread, then stored in
one transaction that replaces its old chunks. With ``prune``, documents that
were under an ingested directory and are gone from it are removed. A file that
cannot be read is reported and skipped; the others still go in.

A document's ``source`` is its path relative to ``relative_to`` (the working
directory by default) when it lies under it, else its absolute path: stable
across runs, and what a citation shows.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agenthost.errors import KnowledgeError
from agenthost.knowledge.base import IndexedDocument, KnowledgeIndex
from agenthost.knowledge.chunking import chunk_document
from agenthost.knowledge.readers import reader_for

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""``progress(source, done, total)``: called after each file."""


@dataclass
class IngestReport:
    """What one ``ingest`` call did, by source."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    chunks: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


@dataclass(frozen=True, slots=True)
class _File:
    path: Path
    source: str


async def ingest(
    index: KnowledgeIndex,
    paths: Sequence[Path],
    *,
    kb: str,
    relative_to: Path | None = None,
    prune: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Bring ``kb`` up to date with the files at ``paths``."""
    base = (relative_to or Path.cwd()).resolve()
    files, folders = await asyncio.to_thread(_discover, paths, base)
    stored = await index.hashes(kb)
    report = IngestReport()
    for done, item in enumerate(files, 1):
        try:
            await _ingest_one(index, kb, item, stored.get(item.source), report)
        except KnowledgeError as error:
            report.failed[item.source] = error.message
            logger.warning("could not ingest %s: %s", item.source, error.message)
        if progress is not None:
            progress(item.source, done, len(files))
    if prune:
        present = {item.source for item in files}
        gone = [s for s in stored if s not in present and _under(s, folders)]
        if gone:
            await index.remove(kb, gone)
            report.removed.extend(gone)
    return report


async def _ingest_one(
    index: KnowledgeIndex, kb: str, item: _File, stored_hash: str | None, report: IngestReport
) -> None:
    data = await asyncio.to_thread(_read, item.path)
    content_hash = hashlib.sha256(data).hexdigest()
    if content_hash == stored_hash:
        report.unchanged.append(item.source)
        return
    document = await asyncio.to_thread(_prepare, item, data, content_hash)
    if not await index.put(kb, document):
        report.unchanged.append(item.source)  # another process stored it meanwhile
        return
    (report.updated if stored_hash else report.added).append(item.source)
    report.chunks += len(document.chunks)


def _prepare(item: _File, data: bytes, content_hash: str) -> IndexedDocument:
    reader = reader_for(item.path)
    if reader is None:  # pragma: no cover - _discover only returns readable formats
        raise KnowledgeError(f"{item.source}: unsupported format")
    try:
        parsed = reader(data, item.path.stem)
    except KnowledgeError:
        raise
    except Exception as error:  # a parser library's own failure on a malformed file
        raise KnowledgeError(f"cannot parse it ({type(error).__name__})") from None
    return IndexedDocument(item.source, parsed.title, content_hash, chunk_document(parsed))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise KnowledgeError(f"cannot read it: {error.strerror or error}") from None


def _discover(paths: Iterable[Path], base: Path) -> tuple[list[_File], list[str]]:
    """The readable files under ``paths`` (sorted, each once) and the folders walked."""
    found: dict[str, _File] = {}
    folders: list[str] = []
    for path in paths:
        if path.is_dir():
            folders.append(source_name(path, base))
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    child = Path(root) / name
                    if not name.startswith(".") and reader_for(child) is not None:
                        found.setdefault(source_name(child, base), _File(child, ""))
        elif path.is_file():
            if reader_for(path) is None:
                raise KnowledgeError(
                    f"{path}: unsupported format (Markdown, text, HTML or PDF: "
                    ".md .markdown .txt .text .html .htm .pdf)"
                )
            found.setdefault(source_name(path, base), _File(path, ""))
        else:
            raise KnowledgeError(f"{path}: no such file or directory")
    files = [_File(item.path, source) for source, item in sorted(found.items())]
    return files, folders


def source_name(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when under it (POSIX separators), else absolute."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(base).as_posix()
    except ValueError:
        return resolved.as_posix()


def _under(source: str, folders: Sequence[str]) -> bool:
    return any(
        folder in ("", ".") or source.startswith(folder.rstrip("/") + "/") for folder in folders
    )
