"""The knowledge index contract: every backend (memory, SQLite, PostgreSQL, and Redis, which
keeps knowledge in memory) stores, replaces, ranks, reads back, counts and removes the same."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agenthost.clock import ManualClock
from agenthost.errors import KnowledgeError
from agenthost.knowledge.base import Chunk, IndexedDocument, KnowledgeIndex
from agenthost.knowledge.url import is_persistent, open_knowledge_index, require_persistent

CORPUS = (
    IndexedDocument(
        "guide/cats.md",
        "Cats",
        "hash-cats",
        (
            Chunk(0, "Feeding", "Adult cats eat twice a day. Kittens eat four small meals."),
            Chunk(1, "Sleeping", "Cats sleep up to sixteen hours a day, mostly in warm places."),
        ),
    ),
    IndexedDocument(
        "guide/dogs.md",
        "Dogs",
        "hash-dogs",
        (
            Chunk(0, "Walking", "Dogs need a walk every morning and evening."),
            Chunk(1, "Feeding", "Feed a dog once or twice a day, by its weight."),
        ),
    ),
    IndexedDocument(
        "guide/fish.md",
        "Aquarium fish",
        "hash-fish",
        (Chunk(0, "Water", "Change a quarter of the aquarium water every week."),),
    ),
)


@pytest.fixture
async def index(store_url: str, clock: ManualClock) -> AsyncIterator[KnowledgeIndex]:
    async with open_knowledge_index(store_url, clock=clock) as opened:
        for document in CORPUS:
            assert await opened.put("pets", document)
        yield opened


@pytest.mark.parametrize(
    ("question", "source", "heading"),
    [
        ("How many hours do cats sleep?", "guide/cats.md", "Sleeping"),
        ("When should I walk my dog?", "guide/dogs.md", "Walking"),
        ("How often do I change aquarium water?", "guide/fish.md", "Water"),
        ("What do kittens eat?", "guide/cats.md", "Feeding"),
    ],
)
async def test_search_ranks_the_passage_that_answers_first(
    index: KnowledgeIndex, question: str, source: str, heading: str
) -> None:
    hits = await index.search(question, kb="pets", limit=3)
    assert (hits[0].source, hits[0].heading) == (source, heading)
    assert hits[0].score >= hits[-1].score


async def test_search_finds_nothing_for_unknown_words_or_bases(index: KnowledgeIndex) -> None:
    assert await index.search("quantum chromodynamics", kb="pets") == []
    assert await index.search("the of and", kb="pets") == []
    assert await index.search("cats", kb="other") == []


async def test_search_respects_the_limit(index: KnowledgeIndex) -> None:
    assert len(await index.search("feeding cats dogs water day", kb="pets", limit=2)) == 2


async def test_put_skips_the_same_hash_and_replaces_a_new_one(index: KnowledgeIndex) -> None:
    assert not await index.put("pets", CORPUS[2])
    changed = IndexedDocument(
        "guide/fish.md",
        "Aquarium fish",
        "hash-fish-2",
        (Chunk(0, "Light", "Aquarium lights stay on eight hours a day."),),
    )
    assert await index.put("pets", changed)
    assert (await index.hashes("pets"))["guide/fish.md"] == "hash-fish-2"
    assert await index.search("quarter", kb="pets") == []  # the old chunk is gone
    assert (await index.search("aquarium lights", kb="pets"))[0].heading == "Light"


async def test_read_document_returns_its_chunks_in_order(index: KnowledgeIndex) -> None:
    chunks = await index.read_document("guide/cats.md", kb="pets")
    assert [(c.position, c.heading) for c in chunks] == [(0, "Feeding"), (1, "Sleeping")]
    assert chunks[0].title == "Cats"
    assert await index.read_document("guide/none.md", kb="pets") == []


async def test_frequencies_count_chunks_holding_each_word(index: KnowledgeIndex) -> None:
    counted = await index.frequencies(["feeding", "aquarium", "zebra"], kb="pets")
    assert counted.chunks == 5
    assert counted.counts == {"feeding": 2, "aquarium": 1, "zebra": 0}


async def test_listing_and_removing(index: KnowledgeIndex, clock: ManualClock) -> None:
    [base] = await index.bases()
    assert (base.name, base.documents, base.chunks) == ("pets", 3, 5)
    assert base.updated_at == clock.now()
    documents = await index.documents("pets")
    assert [(d.source, d.chunks) for d in documents] == [
        ("guide/cats.md", 2),
        ("guide/dogs.md", 2),
        ("guide/fish.md", 1),
    ]
    assert await index.remove("pets", ["guide/dogs.md", "guide/none.md"]) == 1
    assert all(h.source != "guide/dogs.md" for h in await index.search("dog walk", kb="pets"))
    assert await index.remove("pets") == 2
    assert await index.bases() == []
    assert await index.search("cats", kb="pets") == []


async def test_only_sql_databases_keep_knowledge(store_url: str) -> None:
    if store_url.startswith(("sqlite", "postgresql")):
        assert is_persistent(store_url)
        require_persistent(store_url)
    else:
        assert not is_persistent(store_url)
        with pytest.raises(KnowledgeError, match="SQL database"):
            require_persistent(store_url)
