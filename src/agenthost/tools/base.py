"""The ``Tool`` seam: something the model may call by name with JSON arguments.

A tool validates its own arguments and raises ``ToolError`` (or any exception) when
it cannot do what was asked; ``Toolset.execute`` turns every failure into a tool
result the model can read, so a bad call never ends the run.

A tool whose results are sources (a knowledge search) may also be a
``CitingTool``: it is then called with the citations the turn has so far and
returns a ``ToolResult`` whose citations it numbered after them (reusing the
number of a source cited before), so an answer's ``[n]`` stays unambiguous
across several searches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from agenthost.messages import Citation


@runtime_checkable
class Tool(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments object."""
        ...

    @property
    def timeout(self) -> float:
        """Seconds one call may take before it is abandoned."""
        ...

    async def call(self, arguments: str) -> str:
        """Run with the model's raw JSON ``arguments``; return the result text."""
        ...


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a ``CitingTool`` returns: the text the model reads and the sources it cites."""

    content: str
    citations: tuple[Citation, ...] = ()


@runtime_checkable
class CitingTool(Tool, Protocol):
    async def call_citing(self, arguments: str, cited: Sequence[Citation]) -> ToolResult:
        """Like ``call``; new sources are numbered after ``cited``, known ones keep their ``n``."""
        ...
