"""Context providers: what an agent adds to a turn before the model is called, without tools.

A model that cannot call tools (the embedded 270M model) cannot search a
knowledge base itself, so an agent may carry a ``ContextProvider``: the loop
calls it once, before the first model call, with the user's message, the
history and the model. What it returns shapes the whole turn:

- ``instructions`` replace the agent's system prompt for this turn (a prompt
  written for a small model);
- ``messages`` go right before the user's message in every model call (for
  example the retrieved sources, as a system message);
- ``citations`` are announced at once (a ``CitationsFound`` event) and kept
  with the reply;
- ``history`` limits how many earlier messages the model sees (a small model
  answers a grounded question better without the conversation);
- ``max_tokens`` caps the reply and ``temperature`` replaces the request's;
  ``style`` asks a base model for one answer rather than a chat turn;
- ``footer`` is added after the model's final answer (for example the list of
  sources a small model would not write itself), streamed and kept like the rest;
- ``reply``, when set, is the answer: the model is not called at all (for
  example "I don't know" when nothing relevant was found).

An empty ``TurnContext`` changes nothing, so a provider can decide per model
(a tool-calling model may prefer to search on its own).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from agenthost.llm.base import ChatModel, PromptStyle
from agenthost.messages import Citation, Message


@dataclass(frozen=True, slots=True)
class ContextRequest:
    """What a provider is told: the user's message, the history before it, the model."""

    message: Message
    history: Sequence[Message]
    model: ChatModel


@dataclass(frozen=True, slots=True)
class TurnContext:
    """What a provider adds to one turn; the defaults change nothing."""

    instructions: str | None = None
    messages: tuple[Message, ...] = ()
    citations: tuple[Citation, ...] = ()
    history: int | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    style: PromptStyle = "chat"
    footer: str = ""
    reply: str | None = None


ContextProvider = Callable[[ContextRequest], Awaitable[TurnContext]]
