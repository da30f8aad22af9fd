"""The knowledge agents: ``faq`` (answers from the documents) and ``research`` (several steps).

Both answer from a knowledge base (by default agenthost's own docs) and cite
their sources. On a model that calls tools they search with ``search_knowledge``
(and ``research`` also reads whole documents and computes); on one that does
not, such as the embedded model, ``KnowledgeContext`` searches before the model
is called and keeps the prompt small enough for it (see ``knowledge.context``).
"""

from __future__ import annotations

from agenthost.agent.definition import Agent
from agenthost.knowledge.base import Retriever
from agenthost.knowledge.context import KnowledgeContext, KnowledgeOptions
from agenthost.knowledge.tools import ReadDocumentTool, SearchKnowledgeTool
from agenthost.tools.builtin import calculator_tool

FAQ_INSTRUCTIONS = (
    "You answer questions from the documents of a knowledge base. First call "
    "search_knowledge with the question's keywords. Answer briefly, only with what the "
    "passages say (quote or paraphrase them), and cite each fact with the passage's number "
    'in brackets, like [1]. If the passages do not answer the question, say "I don\'t know" '
    "and name the closest sources. Never guess, and never cite a number you were not given."
)

RESEARCH_INSTRUCTIONS = (
    "You are a research assistant over the documents of a knowledge base. Work in steps: "
    "(1) plan: split the question into sub-questions; (2) for each, call search_knowledge "
    "with keywords, and read_document when a passage is not enough; (3) take notes of the "
    "facts you find with their citation numbers; use calculator for any arithmetic. Then "
    "answer in this structure:\n"
    "**Answer**: two to four sentences.\n"
    "**Details**: bullet points, each ending with its citations, like [2].\n"
    "**Not covered**: what the documents do not say, if anything.\n"
    "Use only what the documents say and cite only numbers you were given."
)


def faq_agent(retriever: Retriever, options: KnowledgeOptions) -> Agent:
    return Agent(
        name="faq",
        description="Answers questions from the knowledge base, with numbered citations.",
        instructions=FAQ_INSTRUCTIONS,
        tools=(SearchKnowledgeTool(retriever, kb=options.kb),),
        max_steps=4,
        temperature=0.0,
        context=KnowledgeContext(retriever, options),
    )


def research_agent(retriever: Retriever, options: KnowledgeOptions) -> Agent:
    return Agent(
        name="research",
        description="Researches broader questions in several search steps; cites its sources.",
        instructions=RESEARCH_INSTRUCTIONS,
        tools=(
            SearchKnowledgeTool(retriever, kb=options.kb),
            ReadDocumentTool(retriever, kb=options.kb),
            calculator_tool(),
        ),
        max_steps=10,
        context=KnowledgeContext(retriever, options, multi_step=True),
    )
