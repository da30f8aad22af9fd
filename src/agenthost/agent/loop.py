"""The agent loop: model -> tool calls -> tool results -> model, until a final answer.

``stream_turn`` yields events as they happen (text deltas, tool calls and their
results, usage per model call) and ends with ``TurnCompleted`` carrying the
``TurnResult``: the reply text, the messages the turn added, and the turn's
usage. ``run_turn`` is the same without the events. Cancelling the consuming
task closes the model's stream, which stops generation promptly.

The reply text is what a user saw: every text delta of the turn, in order. When
the model writes text in more than one step, a blank line separates the steps,
and that separator is streamed too, so the streamed text always equals the
reply.

Sources: an agent's context provider (before the first model call) and citing
tools (after each call) may find citations; each batch is a ``CitationsFound``
event, and the citations are kept on the next assistant message the turn adds.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Literal, assert_never

from agenthost.agent.context import ContextRequest, TurnContext
from agenthost.agent.definition import Agent
from agenthost.agent.memory import select_window
from agenthost.llm.base import (
    ChatModel,
    FinishReason,
    ModelFinished,
    ModelRequest,
    PromptStyle,
    TextDelta,
    ToolCallReady,
    UsageReported,
    closing_stream,
    count_message_tokens,
)
from agenthost.messages import Citation, Message, ToolCall, Usage
from agenthost.text import whole_characters
from agenthost.tools.toolset import ToolOutcome

TurnEnd = Literal["stop", "length", "max_steps"]

STEP_SEPARATOR = "\n\n"
DEFAULT_REPLY_TOKENS = 1024


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    call: ToolCall


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    outcome: ToolOutcome


@dataclass(frozen=True, slots=True)
class CitationsFound:
    """Sources found for this turn (numbered uniquely within it), in the order found."""

    citations: tuple[Citation, ...]


@dataclass(frozen=True, slots=True)
class TurnResult:
    """What one turn produced; ``messages`` excludes the user message itself."""

    text: str
    messages: tuple[Message, ...]
    tool_outcomes: tuple[ToolOutcome, ...]
    usage: Usage
    model_calls: int
    end: TurnEnd
    citations: tuple[Citation, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageCompleted:
    """A message the turn added (assistant or tool), complete; for callers that save progress."""

    message: Message


@dataclass(frozen=True, slots=True)
class TurnCompleted:
    result: TurnResult


AgentEvent = (
    TextDelta
    | ToolCallStarted
    | ToolCallFinished
    | CitationsFound
    | UsageReported
    | MessageCompleted
    | TurnCompleted
)


@dataclass(frozen=True, slots=True)
class TurnOptions:
    """Per-turn settings; ``None`` falls back to the agent's, then the model's."""

    temperature: float | None = None
    max_tokens: int | None = None
    max_steps: int | None = None


class _Turn:
    """The state of one turn while it runs: what was said, done and spent so far."""

    def __init__(
        self,
        agent: Agent,
        model: ChatModel,
        history: Sequence[Message],
        user_message: Message,
        options: TurnOptions,
    ) -> None:
        self.agent, self.model, self.history = agent, model, history
        self.tools = agent.toolset.specs() if model.supports_tools else ()
        self.system = Message.system(agent.instructions) if agent.instructions else None
        reply_tokens = options.max_tokens or min(DEFAULT_REPLY_TOKENS, model.context_window // 4)
        self.budget = model.context_window - reply_tokens
        self.temperature = (
            options.temperature if options.temperature is not None else agent.temperature
        )
        self.max_tokens = options.max_tokens
        self.messages: list[Message] = [user_message]
        self.outcomes: list[ToolOutcome] = []
        self.texts: list[str] = []
        self.usage = Usage()
        self.model_calls = 0
        self.finish: FinishReason = "stop"
        self.context: tuple[Message, ...] = ()
        self.reply: str | None = None
        self.footer = ""
        self.style: PromptStyle = "chat"
        self.citations: list[Citation] = []
        self._unattached: list[Citation] = []
        self._counts: dict[Message, int] = {}

    async def add_context(self) -> AsyncGenerator[AgentEvent, None]:
        """Ask the agent's context provider (if any) what to add to this turn."""
        if self.agent.context is None:
            return
        found = await self.agent.context(ContextRequest(self.messages[0], self.history, self.model))
        self.apply(found)
        cited = self.cite(found.citations)
        if cited.citations:
            yield cited

    def apply(self, found: TurnContext) -> None:
        self.context, self.reply, self.footer = found.messages, found.reply, found.footer
        self.style = found.style
        if found.instructions is not None:
            self.system = Message.system(found.instructions) if found.instructions else None
        if found.history is not None:
            start = max(len(self.history) - max(found.history, 0), 0)
            self.history = list(self.history)[start:]
        if found.max_tokens is not None:
            self.max_tokens = min(self.max_tokens or found.max_tokens, found.max_tokens)
        if found.temperature is not None:
            self.temperature = found.temperature

    def cite(self, citations: Sequence[Citation]) -> CitationsFound:
        known = {c.n for c in self.citations}
        new = tuple(c for c in citations if c.n not in known)
        self.citations.extend(new)
        self._unattached.extend(new)
        return CitationsFound(new)

    def assistant(self, text: str, calls: tuple[ToolCall, ...] = ()) -> Message:
        """An assistant message, carrying the citations found since the previous one."""
        cited, self._unattached = tuple(self._unattached), []
        return Message.assistant(text, tool_calls=calls, citations=cited)

    def answer(self, reply: str) -> tuple[TextDelta, MessageCompleted]:
        """The provider's own reply, without a model call."""
        self.texts.append(reply)
        self.messages.append(self.assistant(reply))
        return TextDelta(reply), MessageCompleted(self.messages[-1])

    def count(self, message: Message) -> int:
        if message not in self._counts:
            self._counts[message] = count_message_tokens(self.model, message)
        return self._counts[message]

    async def call_model(self) -> AsyncGenerator[AgentEvent, None]:
        """One model call; appends the assistant message it produced to ``messages``."""
        window = select_window(
            self.system,
            self.history,
            self.messages,
            budget=self.budget,
            count=self.count,
            context=self.context,
        )
        request = ModelRequest(
            tuple(window),
            tools=self.tools,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            style=self.style,
        )
        self.model_calls += 1
        self.finish = "stop"
        parts: list[str] = []
        calls: list[ToolCall] = []
        reported: Usage | None = None
        async with closing_stream(self.model.stream(request)) as events:
            async for event in events:
                match event:
                    case TextDelta(text=text) if text:
                        if not parts and self.texts:
                            yield TextDelta(STEP_SEPARATOR)
                        parts.append(text)
                        yield event
                    case ToolCallReady(call=call) if self.tools:
                        calls.append(_whole_call(call))
                    case UsageReported(usage=usage):
                        reported = usage
                    case ModelFinished(reason=reason):
                        self.finish = reason
                    case TextDelta() | ToolCallReady():
                        pass
                    case _:
                        assert_never(event)
        generated = "".join(parts)
        text = generated
        if self.footer and not calls:  # the final answer: the provider's footer goes after it
            footer = self.footer if generated else self.footer.lstrip()
            text += footer
            yield TextDelta(footer)
        if text:
            self.texts.append(text)
        step_usage = reported or self._counted_usage(window, generated, calls)
        self.usage += step_usage
        yield UsageReported(step_usage)
        self.messages.append(self.assistant(text, tuple(calls)))
        yield MessageCompleted(self.messages[-1])

    async def run_tools(self) -> AsyncGenerator[AgentEvent, None]:
        for call in self.messages[-1].tool_calls:
            yield ToolCallStarted(call)
            outcome = await self.agent.toolset.execute(call, cited=self.citations)
            self.outcomes.append(outcome)
            self.messages.append(
                Message.tool(
                    outcome.content, tool_call_id=call.id, name=call.name, is_error=outcome.is_error
                )
            )
            yield ToolCallFinished(outcome)
            yield MessageCompleted(self.messages[-1])
            cited = self.cite(outcome.citations)
            if cited.citations:
                yield cited

    def give_up(self, max_steps: int) -> tuple[TextDelta, MessageCompleted]:
        notice = (
            f"I stopped after {max_steps} steps without reaching a final answer. "
            "Ask me to continue, or narrow the question."
        )
        delta = TextDelta(STEP_SEPARATOR + notice if self.texts else notice)
        self.texts.append(notice)
        self.messages.append(self.assistant(notice))
        return delta, MessageCompleted(self.messages[-1])

    def completed(self, end: TurnEnd) -> TurnCompleted:
        return TurnCompleted(
            TurnResult(
                text=STEP_SEPARATOR.join(self.texts),
                messages=tuple(self.messages[1:]),
                tool_outcomes=tuple(self.outcomes),
                usage=self.usage,
                model_calls=self.model_calls,
                end=end,
                citations=tuple(self.citations),
            )
        )

    def _counted_usage(self, window: list[Message], text: str, calls: list[ToolCall]) -> Usage:
        """Usage counted with the model's tokenizer, for providers that report none."""
        completion = text + "".join(f"\n{call.name}({call.arguments})" for call in calls)
        return Usage(
            prompt_tokens=sum(self.count(m) for m in window),
            completion_tokens=self.model.count_tokens(completion),
        )


def _whole_call(call: ToolCall) -> ToolCall:
    """The call with text UTF-8 can carry (a server's JSON may split a pair: see ``text``)."""
    name, arguments = whole_characters(call.name), whole_characters(call.arguments)
    if name is call.name and arguments is call.arguments:
        return call
    return ToolCall(call.id, name, arguments)


async def stream_turn(
    agent: Agent,
    model: ChatModel,
    history: Sequence[Message],
    user_message: Message,
    *,
    options: TurnOptions | None = None,
) -> AsyncGenerator[AgentEvent, None]:
    """Run one turn of ``agent`` on ``model`` and yield what happens as it happens."""
    options = options or TurnOptions()
    max_steps = options.max_steps or agent.max_steps
    turn = _Turn(agent, model, history, user_message, options)
    async for event in turn.add_context():
        yield event
    if turn.reply is not None:
        for event in turn.answer(turn.reply):
            yield event
        yield turn.completed("stop")
        return
    for _ in range(max_steps):
        async for event in turn.call_model():
            yield event
        if not turn.messages[-1].tool_calls:
            yield turn.completed("length" if turn.finish == "length" else "stop")
            return
        async for event in turn.run_tools():
            yield event
    for event in turn.give_up(max_steps):
        yield event
    yield turn.completed("max_steps")


async def run_turn(
    agent: Agent,
    model: ChatModel,
    history: Sequence[Message],
    user_message: Message,
    *,
    options: TurnOptions | None = None,
) -> TurnResult:
    """Run one turn to the end and return its result."""
    stream = stream_turn(agent, model, history, user_message, options=options)
    async with aclosing(stream) as events:
        async for event in events:
            if isinstance(event, TurnCompleted):
                return event.result
    raise AssertionError("stream_turn ended without TurnCompleted")  # pragma: no cover
