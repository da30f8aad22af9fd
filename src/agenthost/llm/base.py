"""The ``ChatModel`` seam: what the agent loop asks of any model, local or remote.

A model turns a ``ModelRequest`` into a stream of ``ModelEvent``s: text deltas as
they are generated, complete tool calls (adapters assemble the provider's partial
deltas), the usage the provider reported, and one ``ModelFinished`` at the end.
Closing the stream early (the consumer was cancelled) must stop the generation
promptly and release what it holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

from agenthost.messages import Message, ToolCall, Usage

FinishReason = Literal["stop", "length", "tool_calls"]
PromptStyle = Literal["chat", "answer"]
"""How a model without a chat template is prompted: a chat transcript, or one question to
answer (``Question: ...`` then ``Answer:``, the reply ending with its line). Chat models
ignore it."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What a model is told about one tool: its name, purpose and JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any] = field(hash=False)


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One call to a model: the messages to continue, and how to sample."""

    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    temperature: float | None = None
    max_tokens: int | None = None
    style: PromptStyle = "chat"


class TextDelta(NamedTuple):
    """A piece of the reply's text.

    A named tuple, not a frozen dataclass like the other events: one is made per
    token, and a frozen dataclass takes five times as long to make.
    """

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallReady:
    call: ToolCall


@dataclass(frozen=True, slots=True)
class UsageReported:
    usage: Usage


@dataclass(frozen=True, slots=True)
class ModelFinished:
    reason: FinishReason


ModelEvent = TextDelta | ToolCallReady | UsageReported | ModelFinished


@runtime_checkable
class ChatModel(Protocol):
    """A model the agent can talk to. Implementations: local, openai, test, function."""

    @property
    def model_id(self) -> str:
        """The ``provider:model`` id this model was resolved from."""
        ...

    @property
    def context_window(self) -> int:
        """How many tokens a prompt and its reply may take together."""
        ...

    @property
    def supports_tools(self) -> bool:
        """Whether the model can be offered tools (and call them reliably)."""
        ...

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Generate a reply; closing the iterator early stops the generation."""
        ...

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` takes for this model (exact or a close estimate)."""
        ...

    async def start(self) -> None:
        """Load or connect whatever the model needs; safe to call more than once."""
        ...

    async def aclose(self) -> None:
        """Release what the model holds (threads, connection pools, weights)."""
        ...


class WrappedModel:
    """Base of models that wrap another one: everything but ``stream`` goes to ``wrapped``.

    Subclasses (the circuit breaker, tracing) define ``stream`` and call
    ``self.wrapped.stream`` inside it.
    """

    def __init__(self, model: ChatModel) -> None:
        self._model = model

    @property
    def wrapped(self) -> ChatModel:
        return self._model

    @property
    def model_id(self) -> str:
        return self._model.model_id

    @property
    def context_window(self) -> int:
        return self._model.context_window

    @property
    def supports_tools(self) -> bool:
        return self._model.supports_tools

    def count_tokens(self, text: str) -> int:
        return self._model.count_tokens(text)

    async def start(self) -> None:
        await self._model.start()

    async def aclose(self) -> None:
        await self._model.aclose()


MESSAGE_OVERHEAD_TOKENS = 4
"""Tokens a chat format spends on each message's framing (role markers, separators)."""


def count_message_tokens(model: ChatModel, message: Message) -> int:
    """Tokens one message takes in a prompt: its text, its tool calls, and framing."""
    text = message.content
    for call in message.tool_calls:
        text += f"\n{call.name}({call.arguments})"
    return model.count_tokens(text) + MESSAGE_OVERHEAD_TOKENS


class closing_stream:  # noqa: N801 (used as a function, like contextlib.aclosing)
    """Use a model's stream and close it on the way out, even when cancelled or abandoned.

    A class, not an ``asynccontextmanager``: each model call enters one or two
    (the breaker, the agent loop), and a generator-based one costs an async
    generator and its hooks each time.
    """

    __slots__ = ("_events",)

    def __init__(self, events: AsyncIterator[ModelEvent]) -> None:
        self._events = events

    async def __aenter__(self) -> AsyncIterator[ModelEvent]:
        return self._events

    async def __aexit__(self, *_: object) -> None:
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()
