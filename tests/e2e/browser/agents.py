"""A second agent for the browser tests' server, so the agent picker has a choice."""

from __future__ import annotations

from agenthost.agent.definition import Agent

FAQ = Agent(
    name="faq",
    description="Answers questions about agenthost from its documentation.",
    instructions="Answer questions about agenthost. Be brief.",
)
