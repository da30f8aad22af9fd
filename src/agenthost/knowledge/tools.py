"""The knowledge tools a tool-calling model uses: ``search_knowledge`` and ``read_document``.

Both are ``CitingTool``s: their results carry citations numbered within the
turn (see ``tools.base``), which the agent loop announces and keeps with the
reply. A document that does not exist, or arguments that do not fit, become a
tool result the model can act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agenthost.errors import ToolError
from agenthost.knowledge.base import Retriever
from agenthost.knowledge.citing import cite, search_results, unique
from agenthost.messages import Citation
from agenthost.tools.base import ToolResult

DOCUMENT_CHARS = 12_000
Arguments = TypeVar("Arguments", bound=BaseModel)


class _SearchArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=500, description="What to look for: keywords.")
    limit: int = Field(default=5, ge=1, le=10, description="How many passages (1-10).")


class _ReadArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(
        min_length=1, max_length=1000, description="A document's source, as search results name it."
    )


class _KnowledgeTool:
    timeout = 30.0

    def __init__(self, retriever: Retriever, *, kb: str) -> None:
        self._retriever = retriever
        self._kb = kb

    async def call(self, arguments: str) -> str:
        return (await self.call_citing(arguments, ())).content

    async def call_citing(self, arguments: str, cited: Sequence[Citation]) -> ToolResult:
        raise NotImplementedError  # pragma: no cover


class SearchKnowledgeTool(_KnowledgeTool):
    name = "search_knowledge"
    description = (
        "Search the knowledge base for passages about a question. Returns numbered passages "
        "with their source and heading; cite them by number, like [1]."
    )

    @property
    def parameters(self) -> dict[str, Any]:
        return _SearchArguments.model_json_schema()

    async def call_citing(self, arguments: str, cited: Sequence[Citation]) -> ToolResult:
        args = _parse(_SearchArguments, arguments)
        hits = await self._retriever.search(args.query, kb=self._kb, limit=args.limit)
        pairs = cite(hits, cited)
        return ToolResult(search_results(pairs), unique([c for c, _ in pairs]))


class ReadDocumentTool(_KnowledgeTool):
    name = "read_document"
    description = (
        "Read a whole document of the knowledge base, by the source a search result named. "
        "Use it when a passage is not enough."
    )

    @property
    def parameters(self) -> dict[str, Any]:
        return _ReadArguments.model_json_schema()

    async def call_citing(self, arguments: str, cited: Sequence[Citation]) -> ToolResult:
        args = _parse(_ReadArguments, arguments)
        chunks = await self._retriever.read_document(args.source, kb=self._kb)
        if not chunks:
            raise ToolError(
                f"There is no document {args.source!r}; use a source named by search_knowledge."
            )
        [(citation, _)] = cite([replace(chunks[0], heading="")], cited)
        parts = [f"[{citation.n}] {chunks[0].title} ({args.source})"]
        heading = None
        for chunk in chunks:
            if chunk.heading != heading:
                heading = chunk.heading
                parts.append(f"## {heading}")
            parts.append(chunk.text)
        text = "\n\n".join(parts)
        if len(text) > DOCUMENT_CHARS:
            text = text[:DOCUMENT_CHARS] + "\n[... the rest of the document is cut]"
        return ToolResult(text, (citation,))


def _parse(model: type[Arguments], arguments: str) -> Arguments:
    try:
        return model.model_validate_json(arguments or "{}")
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
            for e in error.errors()
        )
        raise ToolError(f"Invalid arguments: {problems}") from None
