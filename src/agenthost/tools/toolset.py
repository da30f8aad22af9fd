"""A named set of tools, and the one place a tool call is executed.

``Toolset.execute`` never raises for a tool's own failure: an unknown name, bad
arguments, an exception or a timeout all become a ``ToolOutcome`` with
``is_error`` set and a message the model can act on. Only cancellation of the
caller propagates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from agenthost.errors import ConfigurationError, ToolError
from agenthost.llm.base import ToolSpec
from agenthost.messages import Citation, ToolCall
from agenthost.text import whole_characters
from agenthost.tools.base import CitingTool, Tool, ToolResult

logger = logging.getLogger(__name__)

MAX_RESULT_CHARS = 20_000
"""Longer results are cut, so one tool cannot flood the model's context."""


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    call: ToolCall
    content: str
    is_error: bool = False
    citations: tuple[Citation, ...] = ()


class Toolset:
    def __init__(self, tools: Iterable[Tool] = (), *, max_result_chars: int = MAX_RESULT_CHARS):
        self._tools: dict[str, Tool] = {}
        for item in tools:
            if item.name in self._tools:
                raise ConfigurationError(f"two tools are named {item.name!r}")
            self._tools[item.name] = item
        self._max_result_chars = max_result_chars

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(ToolSpec(t.name, t.description, t.parameters) for t in self._tools.values())

    async def execute(self, call: ToolCall, *, cited: Sequence[Citation] = ()) -> ToolOutcome:
        """Run one call; ``cited`` (the turn's citations so far) goes to a ``CitingTool``.

        The result's text is made whole (``whole_characters``): a tool that read
        bytes with ``surrogateescape`` cannot break the stream or the store.
        """
        outcome = await self._run(call, cited)
        content = whole_characters(outcome.content)
        return outcome if content is outcome.content else replace(outcome, content=content)

    async def _run(self, call: ToolCall, cited: Sequence[Citation]) -> ToolOutcome:
        found = self._tools.get(call.name)
        if found is None:
            known = ", ".join(self._tools) or "none"
            return ToolOutcome(call, f"Unknown tool {call.name!r}. Tools: {known}.", True)
        deadline = asyncio.timeout(found.timeout)
        try:
            async with deadline:
                if isinstance(found, CitingTool):
                    result = await found.call_citing(call.arguments, cited)
                else:
                    result = ToolResult(await found.call(call.arguments))
        except ToolError as exc:
            return ToolOutcome(call, f"Error from {call.name}: {exc.message}", True)
        except TimeoutError as exc:
            if not deadline.expired():  # the tool's own timeout, not ours
                return ToolOutcome(call, f"{call.name} failed: {exc or 'timed out'}", True)
            return ToolOutcome(call, f"{call.name} timed out after {found.timeout:g} s.", True)
        except Exception as exc:
            logger.warning("tool %s raised %s", call.name, type(exc).__name__, exc_info=True)
            return ToolOutcome(call, f"{call.name} failed: {type(exc).__name__}: {exc}", True)
        return ToolOutcome(call, self._truncate(result.content), citations=result.citations)

    def _truncate(self, content: str) -> str:
        if len(content) <= self._max_result_chars:
            return content
        cut = len(content) - self._max_result_chars
        return content[: self._max_result_chars] + f"\n[... {cut} more characters cut]"
