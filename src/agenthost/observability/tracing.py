"""OpenTelemetry tracing (the ``[otel]`` extra): spans for requests, turns, model and tool calls.

Only imported when ``AGENTHOST_OTEL_ENABLED`` is on (``telemetry.create_tracing``),
so the extra stays optional. One trace per HTTP request:

    GET /chat/stream                      server span (``X-Trace-ID`` names the trace)
    └── invoke_agent assistant            the turn (it may outlive the request)
        ├── chat gpt-4o-mini              one per model call
        ├── execute_tool calculator       one per tool call
        └── chat gpt-4o-mini

Attributes follow the OpenTelemetry semantic conventions for HTTP servers and
for generative AI (``gen_ai.*``). No span carries message text. A ``traceparent``
header on the request continues the caller's trace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextvars import Token
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue
from starlette.types import Scope

from agenthost import __version__
from agenthost.errors import AgentHostError
from agenthost.llm.base import (
    ChatModel,
    ModelEvent,
    ModelFinished,
    ModelRequest,
    UsageReported,
    WrappedModel,
    closing_stream,
)
from agenthost.messages import ToolCall, Usage
from agenthost.tools.toolset import ToolOutcome

SERVICE_NAME: Final = "agenthost"
TRACE_HEADER: Final = b"x-trace-id"


class Tracing:
    """A tracer provider of this process and the spans agenthost makes with it."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("agenthost", __version__)
        self._propagator = TraceContextTextMapPropagator()

    @classmethod
    def create(cls, exporter: SpanExporter | None) -> Tracing:
        """Spans go to ``exporter`` in batches (none: to processors added later)."""
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({"service.version": __version__})
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
        provider = TracerProvider(resource=resource)
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        # Not made the global provider: FastAPI's own telemetry turns on when there is
        # one, and would make a second server span per request.
        return cls(provider)

    def shutdown(self) -> None:
        """Export what is buffered, then stop (blocks: call it off the event loop)."""
        self.provider.shutdown()

    # -- HTTP requests -----------------------------------------------------------

    def start_request(self, scope: Scope) -> Span:
        """The server span of a request, continuing the caller's trace if it sent one."""
        carrier = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        method = str(scope["method"])
        return self._tracer.start_span(
            method,
            context=self._propagator.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": str(scope["path"]),
                "url.scheme": str(scope.get("scheme", "http")),
            },
        )

    @staticmethod
    def activate(span: Span) -> Token[Context]:
        """Make ``span`` the parent of what this task does next; returns the token to restore."""
        return otel_context.attach(trace.set_span_in_context(span))

    @staticmethod
    def restore(token: Token[Context]) -> None:
        otel_context.detach(token)

    @staticmethod
    def end_request(span: Span, *, method: str, route: str | None, status: int) -> None:
        if route is not None:
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_attribute("error.type", str(status))
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    @staticmethod
    def trace_id(span: Span) -> bytes:
        return trace.format_trace_id(span.get_span_context().trace_id).encode()

    # -- turns, model calls, tool calls --------------------------------------------

    def start_turn(
        self, *, agent: str, model: str, session_id: str | None, run_id: str | None
    ) -> TurnSpans:
        return TurnSpans(self._tracer, agent=agent, model=model, ids=(session_id, run_id))

    def wrap_model(self, model: ChatModel) -> ChatModel:
        return TracedChatModel(model, self._tracer)


class TurnSpans:
    """The ``invoke_agent`` span of one turn, and an ``execute_tool`` span per tool call.

    The turn's span becomes the current span of the task running the turn, so
    model calls (``TracedChatModel``) nest under it. It is not detached: the
    task ends with the turn.
    """

    def __init__(
        self, tracer: Tracer, *, agent: str, model: str, ids: tuple[str | None, str | None]
    ) -> None:
        session_id, run_id = ids
        provider, name = model_names(model)
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent,
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,
            "gen_ai.request.model": name,
        }
        if session_id is not None:
            attributes["gen_ai.conversation.id"] = session_id
        if run_id is not None:
            attributes["agenthost.run.id"] = run_id
        self._tracer = tracer
        self._span = tracer.start_span(f"invoke_agent {agent}", attributes=attributes)
        self._context = trace.set_span_in_context(self._span)
        otel_context.attach(self._context)
        self._tools: dict[str, Span] = {}

    def tool_started(self, call: ToolCall) -> None:
        self._tools[call.id] = self._tracer.start_span(
            f"execute_tool {call.name}",
            context=self._context,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": call.name,
                "gen_ai.tool.call.id": call.id,
                "gen_ai.tool.type": "function",
            },
        )

    def tool_finished(self, outcome: ToolOutcome) -> None:
        span = self._tools.pop(outcome.call.id, None)
        if span is None:
            return
        if outcome.is_error:
            span.set_attribute("error.type", "tool_error")
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    def end(self, status: str, usage: Usage, error: AgentHostError | None) -> None:
        for span in self._tools.values():  # cut short by a cancel or a timeout
            span.set_attribute("error.type", "cancelled")
            span.end()
        self._tools.clear()
        self._span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
        self._span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
        self._span.set_attribute("agenthost.run.status", status)
        if error is not None and status in ("failed", "interrupted"):
            self._span.set_attribute("error.type", type(error).__name__)
            self._span.set_status(Status(StatusCode.ERROR, error.message))
        self._span.end()


class TracedChatModel(WrappedModel):
    """A ``ChatModel`` that puts a ``chat`` span (a client span) around each model call."""

    def __init__(self, model: ChatModel, tracer: Tracer) -> None:
        super().__init__(model)
        self._tracer = tracer
        self._provider, self._name = model_names(model.model_id)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        span = self._tracer.start_span(
            f"chat {self._name}", kind=SpanKind.CLIENT, attributes=self._attributes(request)
        )
        try:
            async with closing_stream(self._model.stream(request)) as events:
                async for event in events:
                    match event:
                        case UsageReported(usage=usage):
                            span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
                            span.set_attribute(
                                "gen_ai.usage.output_tokens", usage.completion_tokens
                            )
                        case ModelFinished(reason=reason):
                            span.set_attribute("gen_ai.response.finish_reasons", [reason])
                        case _:
                            pass
                    yield event
        except Exception as exc:
            span.set_attribute("error.type", type(exc).__name__)
            message = exc.message if isinstance(exc, AgentHostError) else None
            span.set_status(Status(StatusCode.ERROR, message))
            raise
        finally:
            span.end()

    def _attributes(self, request: ModelRequest) -> Mapping[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": self._provider,
            "gen_ai.system": self._provider,
            "gen_ai.request.model": self._name,
        }
        if request.temperature is not None:
            attributes["gen_ai.request.temperature"] = request.temperature
        if request.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = request.max_tokens
        return attributes


def model_names(model_id: str) -> tuple[str, str]:
    """(provider, model): ``openai:gpt-4o-mini`` -> ``openai``, ``gpt-4o-mini``."""
    provider, _, name = model_id.partition(":")
    return provider, name or model_id
