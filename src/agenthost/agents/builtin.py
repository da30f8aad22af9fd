"""The agents agenthost ships with."""

from __future__ import annotations

from agenthost.agent.definition import Agent
from agenthost.clock import Clock
from agenthost.tools.builtin import calculator_tool, current_time_tool

ASSISTANT_INSTRUCTIONS = (
    "You are a helpful, friendly assistant. Answer accurately and concisely. "
    "When a tool can give an exact answer (arithmetic, the current date or time), use it "
    "instead of guessing. If you do not know something, say so."
)


def assistant_agent(clock: Clock) -> Agent:
    return Agent(
        name="assistant",
        description="A general assistant with a calculator and a clock.",
        instructions=ASSISTANT_INSTRUCTIONS,
        tools=(calculator_tool(), current_time_tool(clock)),
    )
