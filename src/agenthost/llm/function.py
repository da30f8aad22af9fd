"""Models for tests and demos that go in through the production seam.

- ``TestModel`` (id ``test``, ``test:slow``): deterministic and instant, no
  network. It answers ``You said: <the last user message>``, so text round trips
  can be checked byte for byte, and reports token usage. A user message of the
  form ``/call NAME {json}`` makes it call that tool, and then report the result.
- ``FunctionModel``: a function decides each reply (text, tool calls, how the
  text is chunked, delays between chunks, a failure mid-stream).
- ``scripted(*replies)``: a ``FunctionModel`` that plays replies in order.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from agenthost.errors import ModelUnavailableError
from agenthost.llm.base import (
    FinishReason,
    ModelEvent,
    ModelFinished,
    ModelRequest,
    TextDelta,
    ToolCallReady,
    UsageReported,
    count_message_tokens,
)
from agenthost.messages import Message, ToolCall, ToolCallId, Usage

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_CHUNK = re.compile(r"\s*\S+|\s+")
_CALL = re.compile(r"^/call\s+([\w.-]+)\s*(\{.*\})?\s*$", re.DOTALL)
_call_ids = itertools.count(1)


def simple_token_count(text: str) -> int:
    """A deterministic stand-in tokenizer: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def call_tool(name: str, arguments: dict[str, object] | None = None) -> ToolCall:
    """A tool call with a fresh id, for scripting models."""
    return ToolCall(ToolCallId(f"call_{next(_call_ids)}"), name, json.dumps(arguments or {}))


@dataclass(frozen=True)
class Reply:
    """One scripted model reply.

    ``chunks`` overrides how ``text`` is streamed (by default, word by word with
    the whitespace kept); ``delay`` is slept before each chunk; with ``error``
    set, it is raised after ``fail_after`` chunks (before any, if None).
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    chunks: tuple[str, ...] | None = None
    delay: float = 0.0
    error: Exception | None = None
    fail_after: int | None = None
    usage: Usage | None = None
    finish: FinishReason | None = None
    pieces: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        pieces = self.chunks if self.chunks is not None else tuple(_CHUNK.findall(self.text))
        object.__setattr__(self, "pieces", pieces)


ReplyFunction = Callable[[ModelRequest], "Reply | str | Awaitable[Reply | str]"]


class FunctionModel:
    """A ``ChatModel`` whose replies a function decides; records every request."""

    def __init__(
        self,
        function: ReplyFunction,
        *,
        model_id: str = "function",
        context_window: int = 8192,
        supports_tools: bool = True,
    ) -> None:
        self._function = function
        self._model_id = model_id
        self._context_window = context_window
        self._supports_tools = supports_tools
        self.requests: list[ModelRequest] = []
        self.streams_closed_early = 0
        self.closed = False

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def supports_tools(self) -> bool:
        return self._supports_tools

    def count_tokens(self, text: str) -> int:
        return simple_token_count(text)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        self.closed = True

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        self.requests.append(request)
        outcome = self._function(request)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        reply = Reply(text=outcome) if isinstance(outcome, str) else outcome
        finished = False
        try:
            for index, piece in enumerate(reply.pieces):
                if reply.error is not None and index == (reply.fail_after or 0):
                    raise reply.error
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                yield TextDelta(piece)
            if reply.error is not None:
                raise reply.error
            for call in reply.tool_calls:
                yield ToolCallReady(call)
            if reply.usage is not None:
                yield UsageReported(reply.usage)
            yield ModelFinished(reply.finish or ("tool_calls" if reply.tool_calls else "stop"))
            finished = True
        finally:
            if not finished and reply.error is None:
                self.streams_closed_early += 1


def scripted(*replies: Reply | str, supports_tools: bool = True) -> FunctionModel:
    """A model that returns ``replies`` in order, one per call; more calls fail."""
    queue = list(replies)

    def next_reply(request: ModelRequest) -> Reply | str:
        if not queue:
            raise ModelUnavailableError("the scripted model has no replies left")
        return queue.pop(0)

    return FunctionModel(next_reply, model_id="function:scripted", supports_tools=supports_tools)


class TestModel(FunctionModel):
    """The ``test`` model: echoes the last user message, instantly and deterministically."""

    __test__ = False  # not a pytest class

    def __init__(self, *, delay: float = 0.0, model_id: str = "test") -> None:
        super().__init__(self._reply, model_id=model_id, context_window=32_768)
        self._delay = delay

    def _reply(self, request: ModelRequest) -> Reply:
        last = request.messages[-1] if request.messages else Message.user("")
        usage = Usage(
            prompt_tokens=sum(count_message_tokens(self, m) for m in request.messages),
            completion_tokens=0,
        )
        if last.role == "tool":
            text = f"{last.name} returned: {last.content}"
            return self._finish(Reply(text, delay=self._delay), usage)
        user = next((m for m in reversed(request.messages) if m.role == "user"), last)
        command = _CALL.match(user.content) if request.tools else None
        if command and last.role == "user":
            call = ToolCall(ToolCallId(f"call_{next(_call_ids)}"), command[1], command[2] or "{}")
            return self._finish(Reply(tool_calls=(call,)), usage)
        return self._finish(Reply(f"You said: {user.content}", delay=self._delay), usage)

    def _finish(self, reply: Reply, usage: Usage) -> Reply:
        completion = simple_token_count(reply.text) + sum(
            simple_token_count(c.arguments) for c in reply.tool_calls
        )
        full = Usage(usage.prompt_tokens, completion)
        return Reply(reply.text, reply.tool_calls, delay=reply.delay, usage=full)
