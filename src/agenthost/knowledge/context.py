"""``KnowledgeContext``: the context provider of the knowledge agents, for tool-less models.

A model that can call tools gets nothing from it (it searches with
``search_knowledge`` itself). For one that cannot, such as the embedded model,
it searches before the model is called: the question alone for the FAQ agent,
or the question and its parts (split at "and", commas and question marks) for
the research agent; decides from the passages' coverage whether the question is
answerable; and either answers "I don't know" with the closest sources (no
model call) or hands the model a short grounded prompt in the ``answer`` style
(sources, ``Question:``, ``Answer:``), no conversation history, a small reply
budget and greedy sampling. The reply ends with a footer: the sentences of the
best passage that share most words with the question, quoted, and the list of
sources, so the reader sees the evidence whatever the small model wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agenthost.agent.context import ContextRequest, TurnContext
from agenthost.knowledge.base import Hit, Retriever
from agenthost.knowledge.citing import cite, sources_line, unique
from agenthost.knowledge.grounding import quote, refusal, relevance, sources_prompt
from agenthost.knowledge.terms import key_terms
from agenthost.messages import Message

_PARTS = re.compile(r"\?|;|,|\band\b|\balso\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class KnowledgeOptions:
    """How the knowledge agents search: which base, how much, and when to refuse."""

    kb: str = "default"
    min_coverage: float = 0.45
    passages: int = 2
    search_limit: int = 5
    reply_tokens: int = 80


class KnowledgeContext:
    def __init__(
        self, retriever: Retriever, options: KnowledgeOptions, *, multi_step: bool = False
    ) -> None:
        self._retriever = retriever
        self._options = options
        self._multi_step = multi_step

    async def __call__(self, request: ContextRequest) -> TurnContext:
        if request.model.supports_tools:
            return TurnContext()
        question = request.message.content
        hits = await self._search(question)
        passages = self._options.passages + (1 if self._multi_step else 0)
        pairs = cite(hits[:passages])
        citations = unique([c for c, _ in pairs])
        score = await relevance(self._retriever, question, hits[:passages], kb=self._options.kb)
        if score < self._options.min_coverage:
            return TurnContext(citations=citations, reply=refusal(citations), history=0)
        return TurnContext(
            instructions="",
            style="answer",
            messages=(Message.system(sources_prompt(question, pairs)),),
            citations=citations,
            history=0,
            max_tokens=self._options.reply_tokens,
            temperature=0.0,
            footer=f"\n\n{quote(question, pairs)}\n\n{sources_line(citations)}",
        )

    async def _search(self, question: str) -> list[Hit]:
        limit = self._options.search_limit
        hits = await self._retriever.search(question, kb=self._options.kb, limit=limit)
        if not self._multi_step:
            return hits
        merged = {hit.chunk_id: hit for hit in hits[:2]}
        for part in sub_questions(question):
            for hit in (await self._retriever.search(part, kb=self._options.kb, limit=2))[:1]:
                merged.setdefault(hit.chunk_id, hit)
        merged.update({hit.chunk_id: hit for hit in hits if hit.chunk_id not in merged})
        return list(merged.values())


def sub_questions(question: str) -> list[str]:
    """The parts of a compound question that have two content words or more."""
    parts = [part.strip() for part in _PARTS.split(question)]
    found = [part for part in parts if len(key_terms(part)) >= 2]
    return found if len(found) > 1 else []
