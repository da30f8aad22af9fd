"""The knowledge agents over HTTP: citations in the JSON reply, the SSE stream, replays and
the session's history; the shipped docs answer questions about agenthost itself."""

from __future__ import annotations

import json

from agenthost.llm.base import ModelRequest
from agenthost.testing import FunctionModel
from tests.api.conftest import running_app
from tests.support.sse import parse

QUESTION = {"message": "How do I turn on API keys?", "agent": "faq"}


def grounded_model() -> FunctionModel:
    """A model without tools that answers from the sources it was given."""

    def answer(request: ModelRequest) -> str:
        sources = request.messages[0].content
        return "Set AGENTHOST_AUTH=keys [1]." if "AGENTHOST_AUTH=keys" in sources else "?"

    return FunctionModel(answer, supports_tools=False)


async def test_agents_lists_the_knowledge_agents() -> None:
    async with running_app() as (_, client):
        agents = (await client.get("/agents")).json()["agents"]
    by_name = {a["name"]: a for a in agents}
    assert {"assistant", "faq", "research"} <= set(by_name)
    assert [t["name"] for t in by_name["research"]["tools"]] == [
        "search_knowledge",
        "read_document",
        "calculator",
    ]


async def test_chat_returns_citations_of_the_shipped_docs() -> None:
    model = grounded_model()
    async with running_app(model) as (_, client):
        reply = await client.post("/chat", json=QUESTION)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        answer, quoted, sources = body["response"].split("\n\n")
        assert answer == "Set AGENTHOST_AUTH=keys [1]."
        assert quoted.startswith("> ")
        assert "AGENTHOST_AUTH=keys" in quoted
        assert sources.startswith("Sources: [1] docs/security.md > API keys")
        first = body["citations"][0]
        assert set(first) == {"n", "source", "heading", "snippet"}
        assert (first["n"], first["source"], first["heading"]) == (
            1,
            "docs/security.md",
            "API keys",
        )
        assert first["snippet"]
        session = (await client.get(f"/sessions/{body['session_id']}")).json()
        stored = session["messages"][-1]
        assert stored["role"] == "assistant"
        assert stored["citations"] == body["citations"]


async def test_stream_sends_a_citations_event_before_the_answer() -> None:
    async with running_app(grounded_model()) as (_, client):
        reply = await client.post("/chat/stream", json=QUESTION)
    events = parse(reply.text).events
    kinds = [e.event for e in events]
    assert kinds.index("citations") < kinds.index("token")
    citations = json.loads(next(e.data for e in events if e.event == "citations"))
    assert citations[0]["source"] == "docs/security.md"
    assert [int(e.id or 0) for e in events] == list(range(1, len(events) + 1))


async def test_a_replayed_run_keeps_its_citations() -> None:
    headers = {"Idempotency-Key": "same"}
    async with running_app(grounded_model(), run_retention_seconds=0) as (_, client):
        first = (await client.post("/chat", json=QUESTION, headers=headers)).json()
        again = await client.post("/chat", json=QUESTION, headers=headers)
        streamed = await client.get(f"/runs/{first['run_id']}/events")
    assert again.json()["run_id"] == first["run_id"]
    assert again.json()["citations"] == first["citations"]
    events = parse(streamed.text).events
    assert [e.event for e in events] == ["session", "run", "citations", "token", "done"]
    assert json.loads(events[2].data) == first["citations"]


async def test_an_unanswerable_question_is_refused_without_the_model() -> None:
    model = grounded_model()
    async with running_app(model) as (_, client):
        body = (
            await client.post(
                "/chat", json={"message": "Who painted the Mona Lisa?", "agent": "faq"}
            )
        ).json()
    assert body["response"].startswith("I don't know")
    assert body["usage"]["total_tokens"] == 0
    assert model.requests == []


async def test_other_agents_answer_without_citations() -> None:
    async with running_app() as (_, client):
        body = (await client.post("/chat", json={"message": "hello"})).json()
    assert body["citations"] == []
