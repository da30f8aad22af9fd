"""``Agent``: what an agent is, as data: a name, instructions, tools and limits.

An agent holds no model: the same agent runs on the embedded model, on OpenAI or
on a test model, chosen where it is served. ``context`` (optional) adds
retrieved context before the model is called (see ``agent.context``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from agenthost.agent.context import ContextProvider
from agenthost.errors import ConfigurationError
from agenthost.tools.base import Tool
from agenthost.tools.toolset import Toolset

AGENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
DEFAULT_MAX_STEPS = 8


@dataclass(frozen=True)
class Agent:
    """A named agent: its system prompt, its tools and how many tool steps it may take."""

    name: str
    instructions: str
    description: str = ""
    tools: tuple[Tool, ...] = field(default=())
    max_steps: int = DEFAULT_MAX_STEPS
    temperature: float | None = None
    context: ContextProvider | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not AGENT_NAME.match(self.name):
            raise ConfigurationError(
                f"agent name {self.name!r} must be 1-64 lowercase letters, digits, '-', '_' or '.'"
            )
        if self.max_steps < 1:
            raise ConfigurationError(f"agent {self.name!r}: max_steps must be at least 1")
        Toolset(self.tools)  # fails now, not mid-run, if two tools share a name

    @cached_property
    def toolset(self) -> Toolset:
        return Toolset(self.tools)
