"""The agent loop's context providers: what a provider's ``TurnContext`` does to a turn."""

from __future__ import annotations

from agenthost import Agent, Message, run_turn, stream_turn
from agenthost.agent.context import ContextRequest, TurnContext
from agenthost.agent.loop import CitationsFound, TurnOptions
from agenthost.agent.progress import TurnProgress
from agenthost.llm.base import TextDelta
from agenthost.messages import Citation
from agenthost.testing import Reply, scripted

SOURCE = Citation(1, "docs/a.md", "Intro", "A says hello.")


def agent_with(context: TurnContext, **fields: object) -> tuple[Agent, list[ContextRequest]]:
    asked: list[ContextRequest] = []

    async def provide(request: ContextRequest) -> TurnContext:
        asked.append(request)
        return context

    return Agent(name="a", instructions="Be brief.", context=provide, **fields), asked  # type: ignore[arg-type]


HISTORY = [
    Message.user("one"),
    Message.assistant("two"),
    Message.user("three"),
    Message.assistant("four"),
]


async def test_an_empty_context_changes_nothing() -> None:
    agent, asked = agent_with(TurnContext())
    model = scripted("hi")
    result = await run_turn(agent, model, HISTORY, Message.user("q"))
    assert asked[0].message == Message.user("q")
    assert list(asked[0].history) == HISTORY
    assert asked[0].model is model
    request = model.requests[0]
    assert [m.content for m in request.messages] == [
        "Be brief.",
        *(m.content for m in HISTORY),
        "q",
    ]
    assert (request.style, request.max_tokens) == ("chat", None)
    assert result.citations == ()


async def test_context_messages_instructions_history_and_limits_apply_to_the_call() -> None:
    context = TurnContext(
        instructions="Answer from the sources.",
        messages=(Message.system("Sources: A says hello."),),
        citations=(SOURCE,),
        history=2,
        max_tokens=50,
        temperature=0.0,
        style="answer",
    )
    agent, _ = agent_with(context)
    model = scripted("hello")
    await run_turn(agent, model, HISTORY, Message.user("q"), options=TurnOptions(max_tokens=80))
    request = model.requests[0]
    assert [m.content for m in request.messages] == [
        "Answer from the sources.",
        "three",
        "four",
        "Sources: A says hello.",
        "q",
    ]
    assert (request.max_tokens, request.temperature, request.style) == (50, 0.0, "answer")


async def test_a_smaller_request_limit_wins_over_the_context_s() -> None:
    agent, _ = agent_with(TurnContext(max_tokens=50, history=0))
    model = scripted("hello")
    await run_turn(agent, model, HISTORY, Message.user("q"), options=TurnOptions(max_tokens=20))
    assert model.requests[0].max_tokens == 20
    assert [m.content for m in model.requests[0].messages] == ["Be brief.", "q"]


async def test_a_reply_answers_without_a_model_call_and_keeps_its_citations() -> None:
    agent, _ = agent_with(TurnContext(citations=(SOURCE,), reply="I don't know."))
    model = scripted()
    events = [e async for e in stream_turn(agent, model, [], Message.user("q"))]
    assert isinstance(events[0], CitationsFound)
    assert events[0].citations == (SOURCE,)
    assert TextDelta("I don't know.") in events
    result = await run_turn(agent, model, [], Message.user("q"))
    assert (result.text, result.model_calls, result.citations) == ("I don't know.", 0, (SOURCE,))
    assert result.messages == (Message.assistant("I don't know.", citations=(SOURCE,)),)
    assert model.requests == []


async def test_the_footer_follows_the_final_answer_only() -> None:
    agent, _ = agent_with(TurnContext(footer="\n\nSources: [1] docs/a.md"))
    model = scripted("Hello.")
    events = [e async for e in stream_turn(agent, model, [], Message.user("q"))]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Hello.\n\nSources: [1] docs/a.md"
    empty = await run_turn(agent, scripted(Reply("")), [], Message.user("q"))
    assert empty.text == "Sources: [1] docs/a.md"


async def test_a_cut_turn_keeps_the_citations_with_its_partial_text() -> None:
    progress = TurnProgress()
    progress.observe(CitationsFound((SOURCE,)))
    progress.observe(TextDelta("Partial"))
    assert progress.messages() == [Message.assistant("Partial", citations=(SOURCE,))]
