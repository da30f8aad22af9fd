"""The faq agent on the real embedded model: a grounded one-line answer from its sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from agenthost import Message, run_turn
from agenthost.agents.knowledge import faq_agent
from agenthost.knowledge.base import Chunk, IndexedDocument
from agenthost.knowledge.context import KnowledgeOptions
from agenthost.knowledge.memory import MemoryKnowledgeIndex
from agenthost.llm.local import LocalChatModel
from agenthost.settings import Settings

pytestmark = pytest.mark.local_model


async def test_the_embedded_model_answers_in_one_line_from_the_sources(tmp_path: Path) -> None:
    index = MemoryKnowledgeIndex()
    await index.put(
        "kb",
        IndexedDocument(
            "docs/server.md",
            "Server",
            "h",
            (Chunk(0, "Network", "The server listens on port 8000 unless PORT is set."),),
        ),
    )
    model = LocalChatModel(Settings(_env_file=None, cache_dir=tmp_path / "cache"))
    try:
        result = await run_turn(
            faq_agent(index, KnowledgeOptions(kb="kb")),
            model,
            [],
            Message.user("Which port does the server listen on?"),
        )
    finally:
        await model.aclose()
    answer, quoted, sources = result.text.split("\n\n")
    assert answer.strip()
    assert "\n" not in answer
    assert "8000" in answer + quoted
    assert sources == "Sources: [1] docs/server.md > Network"
    assert result.model_calls == 1
    assert 0 < result.usage.completion_tokens <= KnowledgeOptions().reply_tokens
