"""The knowledge agents on scripted models: grounded answers, refusals, tools and citations."""

from __future__ import annotations

import json
import sys
import types

import pytest

from agenthost import Agent, Message, run_turn, stream_turn
from agenthost.agent.loop import AgentEvent, CitationsFound, ToolCallFinished, TurnCompleted
from agenthost.agents.knowledge import faq_agent, research_agent
from agenthost.clock import ManualClock
from agenthost.knowledge.base import Chunk, IndexedDocument
from agenthost.knowledge.context import KnowledgeOptions, sub_questions
from agenthost.knowledge.memory import MemoryKnowledgeIndex
from agenthost.llm.base import ModelRequest, TextDelta
from agenthost.messages import Citation
from agenthost.services import create_agent_registry
from agenthost.settings import Settings
from agenthost.testing import FunctionModel, Reply, call_tool, scripted

OPTIONS = KnowledgeOptions(kb="kb")


@pytest.fixture
async def index() -> MemoryKnowledgeIndex:
    index = MemoryKnowledgeIndex()
    await index.put(
        "kb",
        IndexedDocument(
            "docs/security.md",
            "Security",
            "h1",
            (
                Chunk(0, "API keys", "Turn API keys on with AGENTHOST_AUTH=keys. Keys are hashed."),
                Chunk(1, "Limits", "The default rate limit is 120 requests per minute."),
            ),
        ),
    )
    await index.put(
        "kb",
        IndexedDocument(
            "docs/models.md",
            "Models",
            "h2",
            (Chunk(0, "Timeouts", "The first-token timeout is 60 seconds by default."),),
        ),
    )
    return index


async def events_of(agent_stream: object) -> list[AgentEvent]:
    return [event async for event in agent_stream]  # type: ignore[attr-defined]


async def test_faq_on_a_model_without_tools_answers_from_a_grounded_prompt(
    index: MemoryKnowledgeIndex,
) -> None:
    model = scripted("Set AGENTHOST_AUTH=keys.", supports_tools=False)
    history = [Message.user("earlier"), Message.assistant("reply")]
    events = await events_of(
        stream_turn(
            faq_agent(index, OPTIONS), model, history, Message.user("How do I turn on API keys?")
        )
    )
    [request] = model.requests
    assert request.style == "answer"
    assert request.tools == ()
    assert request.temperature == 0.0
    assert request.max_tokens == OPTIONS.reply_tokens
    assert [m.role for m in request.messages] == ["system", "user"]  # no history, no prompt
    assert "AGENTHOST_AUTH=keys" in request.messages[0].content
    assert "[1] (docs/security.md > API keys)" in request.messages[0].content
    found = [e for e in events if isinstance(e, CitationsFound)]
    assert found[0].citations[0] == Citation(
        1, "docs/security.md", "API keys", found[0].citations[0].snippet
    )
    result = events[-1]
    assert isinstance(result, TurnCompleted)
    answer, quoted, sources = result.result.text.split("\n\n")
    assert answer == "Set AGENTHOST_AUTH=keys."
    assert quoted == "> Turn API keys on with AGENTHOST_AUTH=keys. Keys are hashed. [1]"
    assert sources.startswith("Sources: [1] docs/security.md > API keys")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == result.result.text
    assert result.result.messages[-1].citations == result.result.citations


async def test_faq_refuses_without_calling_the_model_when_nothing_is_relevant(
    index: MemoryKnowledgeIndex,
) -> None:
    model = scripted(supports_tools=False)
    for question in ("What is the capital of France?", "How do I deploy with a Helm chart?"):
        result = await run_turn(faq_agent(index, OPTIONS), model, [], Message.user(question))
        assert result.text.startswith("I don't know")
        assert result.model_calls == 0
        assert result.usage.total_tokens == 0
    assert model.requests == []


async def test_a_refusal_names_the_closest_sources(index: MemoryKnowledgeIndex) -> None:
    model = scripted(supports_tools=False)
    result = await run_turn(
        faq_agent(index, OPTIONS), model, [], Message.user("How do I rotate API keys in Vault?")
    )
    assert result.text.startswith("I don't know")
    assert "Closest sources: [1] docs/security.md > API keys" in result.text
    assert result.citations[0].source == "docs/security.md"


async def test_faq_on_a_tool_model_searches_and_cites(index: MemoryKnowledgeIndex) -> None:
    model = scripted(
        Reply(tool_calls=(call_tool("search_knowledge", {"query": "API keys"}),)),
        "Set AGENTHOST_AUTH=keys [1].",
    )
    events = await events_of(
        stream_turn(faq_agent(index, OPTIONS), model, [], Message.user("How do I turn on keys?"))
    )
    first = model.requests[0]
    assert first.style == "chat"
    assert [t.name for t in first.tools] == ["search_knowledge"]
    tool_result = model.requests[1].messages[-1].content
    assert tool_result.startswith("[1] docs/security.md > API keys\nTurn API keys on")
    found = next(e for e in events if isinstance(e, CitationsFound))
    assert found.citations[0].n == 1
    result = events[-1]
    assert isinstance(result, TurnCompleted)
    assert result.result.text == "Set AGENTHOST_AUTH=keys [1]."
    assert result.result.messages[-1].citations == found.citations


async def test_research_takes_several_steps_and_numbers_citations_across_them(
    index: MemoryKnowledgeIndex,
) -> None:
    model = scripted(
        Reply(tool_calls=(call_tool("search_knowledge", {"query": "API keys"}),)),
        Reply(
            tool_calls=(
                call_tool("search_knowledge", {"query": "first-token timeout", "limit": 2}),
                call_tool("read_document", {"source": "docs/security.md"}),
            )
        ),
        Reply(tool_calls=(call_tool("calculator", {"expression": "120 * 60"}),)),
        "**Answer**: keys with AGENTHOST_AUTH=keys [1]; timeout 60 s [2]; 7200 requests an hour.",
    )
    agent = research_agent(index, OPTIONS)
    events = await events_of(
        stream_turn(agent, model, [], Message.user("How do keys and timeouts work?"))
    )
    finished = [e.outcome for e in events if isinstance(e, ToolCallFinished)]
    assert [o.call.name for o in finished] == [
        "search_knowledge",
        "search_knowledge",
        "read_document",
        "calculator",
    ]
    assert finished[3].content == "7200"
    assert not any(o.is_error for o in finished)
    cited = [c for e in events if isinstance(e, CitationsFound) for c in e.citations]
    assert len({c.n for c in cited}) == len(cited)  # each number once in the turn
    by_section = {(c.source, c.heading): c.n for c in cited}
    assert by_section[("docs/security.md", "API keys")] == 1
    assert by_section[("docs/models.md", "Timeouts")] == 2
    assert ("docs/security.md", "") in by_section  # the whole document, read
    second_search = finished[1].content
    assert "[2] docs/models.md > Timeouts" in second_search
    result = events[-1]
    assert isinstance(result, TurnCompleted)
    assert result.result.model_calls == 4
    assert result.result.citations == tuple(cited)


async def test_research_search_reuses_the_number_of_a_section_cited_before(
    index: MemoryKnowledgeIndex,
) -> None:
    model = scripted(
        Reply(tool_calls=(call_tool("search_knowledge", {"query": "API keys"}),)),
        Reply(tool_calls=(call_tool("search_knowledge", {"query": "keys hashed"}),)),
        "Done [1].",
    )
    result = await run_turn(research_agent(index, OPTIONS), model, [], Message.user("keys?"))
    second = result.tool_outcomes[1]
    assert second.content.startswith("[1] docs/security.md > API keys")
    assert second.citations[0].n == 1
    assert [c.n for c in result.citations].count(1) == 1


async def test_knowledge_tools_report_bad_calls_to_the_model(index: MemoryKnowledgeIndex) -> None:
    model = scripted(
        Reply(
            tool_calls=(
                call_tool("read_document", {"source": "docs/none.md"}),
                call_tool("search_knowledge", {"query": ""}),
                call_tool("search_knowledge", {"query": "x", "extra": 1}),
            )
        ),
        "I could not find it.",
    )
    result = await run_turn(research_agent(index, OPTIONS), model, [], Message.user("?"))
    errors = [o for o in result.tool_outcomes if o.is_error]
    assert len(errors) == 3
    assert "no document 'docs/none.md'" in errors[0].content
    assert "Invalid arguments" in errors[1].content
    assert result.citations == ()


async def test_research_without_tools_searches_each_part_of_the_question(
    index: MemoryKnowledgeIndex,
) -> None:
    seen: list[ModelRequest] = []

    def answer(request: ModelRequest) -> str:
        seen.append(request)
        return "Keys need AGENTHOST_AUTH=keys and the timeout is 60 seconds."

    model = FunctionModel(answer, supports_tools=False)
    question = "How do I turn on API keys, and what is the first-token timeout?"
    result = await run_turn(research_agent(index, OPTIONS), model, [], Message.user(question))
    prompt = seen[0].messages[0].content
    assert "docs/security.md > API keys" in prompt
    assert "docs/models.md > Timeouts" in prompt
    assert {c.source for c in result.citations} == {"docs/security.md", "docs/models.md"}


def test_sub_questions_split_compound_questions_only() -> None:
    assert sub_questions("How do I turn on API keys, and what is the token timeout?") == [
        "How do I turn on API keys",
        "what is the token timeout",
    ]
    assert sub_questions("How do I turn on API keys?") == []


async def test_citations_of_a_tool_result_survive_a_json_round_trip(
    index: MemoryKnowledgeIndex,
) -> None:
    from agenthost.messages import message_from_dict, message_to_dict

    model = scripted(
        Reply(tool_calls=(call_tool("search_knowledge", {"query": "rate limit"}),)), "120 [1]."
    )
    result = await run_turn(faq_agent(index, OPTIONS), model, [], Message.user("limit?"))
    final = result.messages[-1]
    assert final.citations
    assert message_from_dict(json.loads(json.dumps(message_to_dict(final)))) == final


def test_a_user_agent_named_faq_replaces_the_builtin_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = MemoryKnowledgeIndex()
    settings = Settings(_env_file=None, model="test")
    registry = create_agent_registry(settings, ManualClock(), knowledge=index)
    assert registry.names == ("assistant", "faq", "research")
    mine = Agent(name="faq", instructions="Mine.")
    module = types.ModuleType("my_faq_agents")
    module.FAQ = mine  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "my_faq_agents", module)
    with_mine = settings.model_copy(update={"agents": ["my_faq_agents:FAQ"]})
    registry = create_agent_registry(with_mine, ManualClock(), knowledge=index)
    assert registry.names == ("assistant", "research", "faq")
    assert registry.get("faq") is mine
