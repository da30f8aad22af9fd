"""Ingestion: every format goes in, unchanged files are skipped, changed ones replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from agenthost.errors import KnowledgeError
from agenthost.knowledge.bundled import bundled_docs_dir, sync_bundled_docs
from agenthost.knowledge.ingest import ingest
from agenthost.knowledge.memory import MemoryKnowledgeIndex
from tests.support.documents import write_corpus


async def test_each_format_is_ingested_and_searchable(tmp_path: Path) -> None:
    index = MemoryKnowledgeIndex()
    corpus = write_corpus(tmp_path / "corpus")
    seen: list[tuple[str, int, int]] = []
    report = await ingest(
        index, [corpus], kb="kb", relative_to=tmp_path, progress=lambda *a: seen.append(a)
    )
    sources = [
        "corpus/bicycle.html",
        "corpus/bread.txt",
        "corpus/garden.md",
        "corpus/telescope.pdf",
    ]
    assert sorted(report.added) == sources
    assert [s[1:] for s in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    for question, source in [
        ("How long should I knead dough?", "corpus/bread.txt"),
        ("When do I prune roses?", "corpus/garden.md"),
        ("What pressure for the tyres?", "corpus/bicycle.html"),
        ("How do I clean the lens?", "corpus/telescope.pdf"),
    ]:
        hits = await index.search(question, kb="kb")
        assert hits[0].source == source, question
    lens = (await index.search("clean the lens", kb="kb"))[0]
    assert (lens.title, lens.heading) == ("Telescope manual", "page 2")


async def test_reingesting_unchanged_files_does_nothing(tmp_path: Path) -> None:
    index = MemoryKnowledgeIndex()
    corpus = write_corpus(tmp_path / "corpus")
    await ingest(index, [corpus], kb="kb", relative_to=tmp_path)
    again = await ingest(index, [corpus], kb="kb", relative_to=tmp_path)
    assert not again.changed
    assert len(again.unchanged) == 4
    assert again.chunks == 0


async def test_a_changed_file_replaces_its_old_chunks(tmp_path: Path) -> None:
    index = MemoryKnowledgeIndex()
    corpus = write_corpus(tmp_path / "corpus")
    await ingest(index, [corpus], kb="kb", relative_to=tmp_path)
    (corpus / "bread.txt").write_text("Sourdough needs a starter fed daily.\n")
    report = await ingest(index, [corpus], kb="kb", relative_to=tmp_path)
    assert report.updated == ["corpus/bread.txt"]
    assert await index.search("yeast carbon dioxide", kb="kb") == []
    assert (await index.search("sourdough starter", kb="kb"))[0].source == "corpus/bread.txt"


async def test_prune_removes_documents_gone_from_the_folder(tmp_path: Path) -> None:
    index = MemoryKnowledgeIndex()
    corpus = write_corpus(tmp_path / "corpus")
    await ingest(index, [corpus], kb="kb", relative_to=tmp_path)
    (corpus / "bread.txt").unlink()
    kept = await ingest(index, [corpus], kb="kb", relative_to=tmp_path)
    assert kept.removed == []
    pruned = await ingest(index, [corpus], kb="kb", relative_to=tmp_path, prune=True)
    assert pruned.removed == ["corpus/bread.txt"]
    assert "corpus/bread.txt" not in await index.hashes("kb")


async def test_a_bad_file_is_reported_and_the_others_still_go_in(tmp_path: Path) -> None:
    index = MemoryKnowledgeIndex()
    corpus = write_corpus(tmp_path / "corpus")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    report = await ingest(index, [corpus], kb="kb", relative_to=tmp_path)
    assert list(report.failed) == ["corpus/broken.pdf"]
    assert "not a readable PDF" in report.failed["corpus/broken.pdf"]
    assert len(report.added) == 4


async def test_unknown_formats_and_missing_paths_are_clear_errors(tmp_path: Path) -> None:
    index = MemoryKnowledgeIndex()
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(KnowledgeError, match="unsupported format"):
        await ingest(index, [tmp_path / "data.csv"], kb="kb")
    with pytest.raises(KnowledgeError, match="no such file"):
        await ingest(index, [tmp_path / "missing.md"], kb="kb")


async def test_sources_outside_the_base_folder_are_absolute(tmp_path: Path) -> None:
    index = MemoryKnowledgeIndex()
    corpus = write_corpus(tmp_path / "corpus")
    report = await ingest(index, [corpus / "garden.md"], kb="kb", relative_to=tmp_path / "else")
    assert report.added == [(corpus / "garden.md").resolve().as_posix()]


async def test_the_shipped_docs_are_found_and_synced_once() -> None:
    docs = bundled_docs_dir()
    assert docs is not None
    assert (docs / "api.md").is_file()
    index = MemoryKnowledgeIndex()
    first = await sync_bundled_docs(index, kb="default")
    assert first is not None
    assert "docs/api.md" in first.added
    second = await sync_bundled_docs(index, kb="default")
    assert second is not None
    assert not second.changed
    hits = await index.search("How do I turn on API keys?", kb="default")
    assert hits[0].source == "docs/security.md"
