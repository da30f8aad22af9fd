"""The agents a process hosts: the built-in ones plus the user's own.

Users bring agents from Python with a reference ``package.module:attribute``
naming an ``Agent`` or a list of them (``--agent`` or ``AGENTHOST_AGENTS``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator

from agenthost.agent.definition import Agent
from agenthost.errors import AgentNotFoundError, ConfigurationError


class AgentRegistry:
    def __init__(self, agents: Iterable[Agent], *, default: str) -> None:
        self._agents: dict[str, Agent] = {}
        for agent in agents:
            if agent.name in self._agents and self._agents[agent.name] is not agent:
                raise ConfigurationError(f"two agents are named {agent.name!r}")
            self._agents[agent.name] = agent
        self.default = self.get(default).name

    def get(self, name: str | None = None) -> Agent:
        found = self._agents.get(name or self.default)
        if found is None:
            raise AgentNotFoundError(name or "", available=self.names)
        return found

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._agents)

    def __iter__(self) -> Iterator[Agent]:
        return iter(self._agents.values())

    def __len__(self) -> int:
        return len(self._agents)


def is_reference(value: str) -> bool:
    return ":" in value


def load_agents(reference: str) -> list[Agent]:
    """Import ``package.module:attribute`` and return the agent(s) it names."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(
            f"agent reference {reference!r} must look like 'package.module:attribute'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"cannot import {module_name!r} for agent {reference!r}: {exc}"
        ) from exc
    try:
        value: object = getattr(module, attribute)
    except AttributeError:
        raise ConfigurationError(f"{module_name!r} has no attribute {attribute!r}") from None
    if isinstance(value, Agent):
        return [value]
    if isinstance(value, list | tuple) and value and all(isinstance(a, Agent) for a in value):
        return list(value)
    raise ConfigurationError(
        f"{reference!r} is a {type(value).__name__}, not an Agent or a list of Agents"
    )
