"""``OpenAIChatModel``: the ``openai:<model>`` ids, for OpenAI and any OpenAI-compatible server.

It streams chat completions over one aiohttp connection pool sized for
thousands of concurrent streams (``openai_stream.UpstreamConnection``). It
enforces four budgets itself (connect, first token, idle gap between chunks,
total) and retries only before the first chunk has arrived, so a retry never
repeats text the caller has already shown. ``openai_errors`` turns failures
into the agenthost error tree.

The request body is built here from plain dicts, and the reply is read as raw
bytes split into ``data:`` lines and ``json.loads``-ed. The official SDK's
``chat.completions.create`` walked every message and tool schema by reflection
per request, built a pydantic model per chunk and passed every byte through
httpx2 and an aiohttp shim, which together cost more CPU than the rest of a
streamed turn (docs/performance.md); its typed dicts still describe the body.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import assert_never

from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
)

from agenthost.clock import Clock, SystemClock
from agenthost.errors import (
    ConfigurationError,
    ModelError,
    ModelRateLimitedError,
    ModelRequestRejectedError,
)
from agenthost.llm.base import (
    FinishReason,
    ModelEvent,
    ModelFinished,
    ModelRequest,
    TextDelta,
    ToolCallReady,
    ToolSpec,
    UsageReported,
)
from agenthost.llm.openai_errors import TimeoutPhase, UpstreamErrors, host_of
from agenthost.llm.openai_stream import Chunk, ChunkReader, UpstreamConnection
from agenthost.messages import Message, ToolCall, ToolCallId, Usage
from agenthost.settings import Settings
from agenthost.step_timer import StepTimer

__all__ = ["OpenAIChatModel"]

_log = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER_API_KEY = "not-needed"
"""Sent to keyless local servers (vLLM, Ollama), which ignore it; some proxies want one."""
_BYTES_PER_TOKEN = 4
_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


class OpenAIChatModel:
    """A ``ChatModel`` backed by an OpenAI-compatible ``/chat/completions`` endpoint.

    ``api_key`` may be omitted for a local server given by ``base_url``; with
    neither, there is nothing to talk to and ``ConfigurationError`` is raised.
    ``organization`` and ``project`` go out as OpenAI's headers of those names.
    Timeouts are in seconds. ``max_retries`` counts extra attempts before the
    first chunk, spaced by jittered exponential backoff from ``retry_base_delay``
    up to ``retry_max_delay``, or by the server's ``Retry-After`` when it is at
    most ``max_retry_after`` (a longer wait is left to the caller).
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        context_window: int = 128_000,
        connect_timeout: float = 10.0,
        first_token_timeout: float = 60.0,
        idle_timeout: float = 30.0,
        total_timeout: float = 600.0,
        max_retries: int = 2,
        max_connections: int = 4096,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        max_retry_after: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        if not api_key and not base_url:
            raise ConfigurationError(
                f"The model 'openai:{model}' needs an API key or a server: set OPENAI_API_KEY, "
                "or OPENAI_BASE_URL for a local OpenAI-compatible server (vLLM, Ollama)."
            )
        self._model = model
        self._api_key = api_key or PLACEHOLDER_API_KEY
        self._base_url = base_url or OPENAI_BASE_URL
        self._context_window = context_window
        self._connect_timeout = connect_timeout
        self._first_token_timeout = first_token_timeout
        self._idle_timeout = idle_timeout
        self._total_timeout = total_timeout
        self._max_retries = max_retries
        self._max_connections = max_connections
        self._retry_base_delay = retry_base_delay
        self._retry_max_delay = retry_max_delay
        self._max_retry_after = max_retry_after
        self._clock: Clock = clock or SystemClock()
        self._errors = UpstreamErrors(host_of(self._base_url), model, connect_timeout, api_key)
        self._upstream = UpstreamConnection(
            self._base_url,
            self._api_key,
            organization=organization,
            project=project,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            errors=self._errors,
            clock=self._clock,
        )

    @classmethod
    def from_settings(
        cls, model: str, settings: Settings, *, clock: Clock | None = None
    ) -> OpenAIChatModel:
        """The model ``openai:<model>`` configured by the ``openai_*`` settings."""
        key = settings.openai_api_key
        return cls(
            model,
            api_key=key.get_secret_value() if key is not None else None,
            base_url=settings.openai_base_url,
            organization=settings.openai_organization,
            project=settings.openai_project,
            context_window=settings.openai_context_window,
            connect_timeout=settings.openai_connect_timeout,
            first_token_timeout=settings.openai_first_token_timeout,
            idle_timeout=settings.openai_idle_timeout,
            total_timeout=settings.openai_total_timeout,
            max_retries=settings.openai_max_retries,
            max_connections=settings.openai_max_connections,
            clock=clock,
        )

    @property
    def model_id(self) -> str:
        return f"openai:{self._model}"

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def supports_tools(self) -> bool:
        return True

    def count_tokens(self, text: str) -> int:
        """An estimate: one token per four UTF-8 bytes, rounded up.

        OpenAI-compatible servers run many tokenizers and tiktoken would download
        its tables at run time, so this only has to be close and deterministic;
        it budgets the context window. The usage the server reports is the
        authoritative count. Half a surrogate pair (a server's JSON may send one)
        counts as the three bytes it would take.
        """
        return math.ceil(len(text.encode("utf-8", "surrogatepass")) / _BYTES_PER_TOKEN)

    async def start(self) -> None:
        self._upstream.open()

    async def aclose(self) -> None:
        await self._upstream.aclose()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        body = self._body(request)
        deadline = self._clock.monotonic() + self._total_timeout
        loop = asyncio.get_running_loop()  # once per reply: a getpid on Python 3.11
        chunks, chunk = await self._open(body, deadline, loop)
        try:
            reply = _ReplyAssembler()
            idle, monotonic = self._idle_timeout, self._clock.monotonic
            while chunk is not None:
                text = reply.add(chunk)
                if text:
                    yield TextDelta(text)
                # The idle limit, or what is left in total if less (``_budget``, inlined:
                # this runs per chunk).
                limit = min(idle, max(deadline - monotonic(), 0.0))
                try:
                    chunk = await chunks.next(limit)
                except TimeoutError as error:
                    if limit >= idle:
                        raise self._errors.timeout("idle", idle) from error
                    raise self._errors.timeout("total", self._total_timeout) from error
            for event in reply.finish():
                yield event
        finally:
            await chunks.aclose()

    def _body(self, request: ModelRequest) -> dict[str, object]:
        """The JSON body of a streamed ``/chat/completions`` request, as plain dicts."""
        body: dict[str, object] = {
            "model": self._model,
            "messages": [_message_param(message) for message in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            body["tools"] = [_tool_param(spec) for spec in request.tools]
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        return body

    async def _open(
        self, body: dict[str, object], deadline: float, loop: asyncio.AbstractEventLoop
    ) -> tuple[ChunkReader, Chunk | None]:
        """Send the request and wait for its first chunk, retrying what may succeed."""
        attempt = 0
        while True:
            try:
                phase, seconds, limit = self._budget(
                    "first_token", self._first_token_timeout, deadline
                )
                with StepTimer(loop=loop) as timer:
                    try:
                        return await timer.wait(self._send(body), limit)
                    except TimeoutError as error:
                        if timer.expired:
                            raise self._errors.timeout(phase, seconds) from error
                        raise
            except ModelError as error:
                delay = self._retry_delay(error, attempt, deadline)
                if delay is None:
                    raise
                _log.warning("retrying %s in %.2fs: %s", self.model_id, delay, error.message)
            attempt += 1
            await asyncio.sleep(delay)

    async def _send(self, body: dict[str, object]) -> tuple[ChunkReader, Chunk | None]:
        chunks = await self._upstream.stream(body)
        try:
            return chunks, await chunks.next()
        except BaseException:
            await chunks.aclose()
            raise

    def _budget(
        self, phase: TimeoutPhase, seconds: float, deadline: float
    ) -> tuple[TimeoutPhase, float, float]:
        """The phase, its budget and the wait's limit: the phase's, or what is left in total."""
        remaining = max(deadline - self._clock.monotonic(), 0.0)
        if remaining < seconds:
            return "total", self._total_timeout, remaining
        return phase, seconds, seconds

    def _retry_delay(self, error: ModelError, attempt: int, deadline: float) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if not error.retryable or attempt >= self._max_retries:
            return None
        if isinstance(error, ModelRateLimitedError) and error.retry_after is not None:
            if error.retry_after > self._max_retry_after:
                return None
            delay = error.retry_after
        else:
            ceiling = min(self._retry_max_delay, self._retry_base_delay * 2**attempt)
            delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        if self._clock.monotonic() + delay >= deadline:
            return None
        return delay


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class _ReplyAssembler:
    """Folds a reply's chunks into its text deltas, whole tool calls, usage and finish."""

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}
        self._usage: Usage | None = None
        self._finish_reason: str | None = None

    def add(self, chunk: Chunk) -> str:
        """Take in one chunk; returns its new text ('' when it carries none)."""
        usage = chunk.get("usage")
        if usage:
            self._usage = Usage(
                prompt_tokens=usage.get("prompt_tokens") or 0,
                completion_tokens=usage.get("completion_tokens") or 0,
            )
        choices = chunk.get("choices")
        if not choices:
            return ""
        choice = choices[0]
        finish_reason = choice.get("finish_reason")
        if finish_reason is not None:
            self._finish_reason = finish_reason
        delta = choice.get("delta") or {}
        for call_delta in delta.get("tool_calls") or ():
            call = self._calls.setdefault(call_delta.get("index", 0), _PartialCall())
            call.id = call.id or call_delta.get("id") or ""
            function = call_delta.get("function")
            if function is not None:
                call.name = call.name or function.get("name") or ""
                call.arguments.append(function.get("arguments") or "")
        content: str | None = delta.get("content")
        return content or ""

    def finish(self) -> Iterator[ModelEvent]:
        """The events that close the reply: tool calls in order, usage, and the finish."""
        for index in sorted(self._calls):
            call = self._calls[index]
            call_id = ToolCallId(call.id or f"call_{index}")
            yield ToolCallReady(ToolCall(call_id, call.name, "".join(call.arguments) or "{}"))
        if self._usage is not None:
            yield UsageReported(self._usage)
        # content_filter and unknown reasons end the reply like a stop; some servers
        # say "stop" after tool calls, which still means the tools must run.
        reason = _FINISH_REASONS.get(self._finish_reason or "", "stop")
        if self._calls and reason == "stop":
            reason = "tool_calls"
        yield ModelFinished(reason)


def _message_param(message: Message) -> ChatCompletionMessageParam:
    match message.role:
        case "system":
            return {"role": "system", "content": message.content}
        case "user":
            return {"role": "user", "content": message.content}
        case "assistant":
            param: ChatCompletionAssistantMessageParam = {"role": "assistant"}
            if message.content or not message.tool_calls:
                param["content"] = message.content
            if message.tool_calls:
                param["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in message.tool_calls
                ]
            return param
        case "tool":
            if message.tool_call_id is None:
                raise ModelRequestRejectedError(
                    "A tool message has no tool_call_id, so the model cannot match it "
                    "to its call; build tool results with Message.tool(...)."
                )
            return {
                "role": "tool",
                "content": message.content,
                "tool_call_id": message.tool_call_id,
            }
        case _:
            assert_never(message.role)


def _tool_param(spec: ToolSpec) -> ChatCompletionFunctionToolParam:
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.parameters,
        },
    }
