"""Agents for tests that need more than the built-in assistant (loaded by reference)."""

from agenthost import Agent

second = Agent(name="second", description="A second agent.", instructions="Second agent.")
