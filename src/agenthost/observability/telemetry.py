"""``Telemetry``: what a process reports (metrics, optional traces), and ``TurnWatch``.

The composition root builds one ``Telemetry`` per process. Whatever runs a
turn (the run manager, the stateless OpenAI-compatible route) opens a
``TurnWatch``, shows it the turn's events, and finishes it with the outcome;
the watch turns that into the time to first token, the token and run
counters, model errors, the turn's spans, and one log line:

    run completed  agent=assistant model=openai:gpt-4o-mini status=completed
                   tokens_in=120 tokens_out=25 ttft_ms=412.5 duration_ms=1873.0

The line carries the text of the message and the reply only when
``AGENTHOST_LOG_CONTENT`` is on. A turn's events are seen one by one, so the
work per event is kept to a type check (and, with tracing, a tool span).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, assert_never

from agenthost.agent.loop import AgentEvent, ToolCallFinished, ToolCallStarted
from agenthost.clock import Clock
from agenthost.errors import AgentHostError, ConfigurationError, ModelError
from agenthost.llm.base import ChatModel, TextDelta
from agenthost.messages import Usage
from agenthost.observability.metrics import Metrics

if TYPE_CHECKING:
    from agenthost.observability.tracing import Tracing, TurnSpans
    from agenthost.settings import Settings

logger = logging.getLogger("agenthost.runs")


class Telemetry:
    def __init__(
        self,
        metrics: Metrics,
        *,
        clock: Clock,
        tracing: Tracing | None = None,
        log_content: bool = False,
    ) -> None:
        self.metrics = metrics
        self.tracing = tracing
        self.clock = clock
        self.log_content = log_content

    def watch(
        self,
        *,
        agent: str,
        model: str,
        message: str,
        session_id: str | None = None,
        run_id: str | None = None,
    ) -> TurnWatch:
        """Start watching a turn that starts now."""
        spans = (
            self.tracing.start_turn(agent=agent, model=model, session_id=session_id, run_id=run_id)
            if self.tracing is not None
            else None
        )
        return TurnWatch(self, agent=agent, model=model, message=message, spans=spans)

    def wrap_model(self, model: ChatModel) -> ChatModel:
        """The model with a span around each call, when tracing is on."""
        return self.tracing.wrap_model(model) if self.tracing is not None else model

    async def aclose(self) -> None:
        self.metrics.close()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)


class TurnWatch:
    def __init__(
        self,
        telemetry: Telemetry,
        *,
        agent: str,
        model: str,
        message: str,
        spans: TurnSpans | None,
    ) -> None:
        self._telemetry = telemetry
        self._agent = agent
        self._model = model
        self._message = message
        self._spans = spans
        self._started = telemetry.clock.monotonic()
        self._first_token: float | None = None
        self._reply: list[str] | None = [] if telemetry.log_content else None

    def observe(self, event: AgentEvent) -> None:
        if isinstance(event, TextDelta):
            if self._reply is not None:
                self._reply.append(event.text)
            if self._first_token is None and event.text:
                self._first_token = self._telemetry.clock.monotonic() - self._started
                self._telemetry.metrics.observe_first_token(
                    self._model, self._agent, self._first_token
                )
        elif self._spans is not None:
            if isinstance(event, ToolCallStarted):
                self._spans.tool_started(event.call)
            elif isinstance(event, ToolCallFinished):
                self._spans.tool_finished(event.outcome)

    def finish(self, status: str, usage: Usage, *, error: AgentHostError | None = None) -> None:
        """The turn ended with ``status`` (``completed``, ``failed``, ``cancelled``, ...)."""
        metrics = self._telemetry.metrics
        metrics.count_tokens(
            self._model,
            self._agent,
            tokens_in=usage.prompt_tokens,
            tokens_out=usage.completion_tokens,
        )
        metrics.count_run(self._agent, status)
        if isinstance(error, ModelError):
            metrics.count_model_error(self._model, type(error).__name__)
        if self._spans is not None:
            self._spans.end(status, usage, error)
        self._log(status, usage, error)

    def _log(self, status: str, usage: Usage, error: AgentHostError | None) -> None:
        level = logging.WARNING if status in ("failed", "interrupted") else logging.INFO
        if not logger.isEnabledFor(level):
            return
        fields: dict[str, object] = {
            "agent": self._agent,
            "model": self._model,
            "status": status,
            "tokens_in": usage.prompt_tokens,
            "tokens_out": usage.completion_tokens,
            "duration_ms": _ms(self._telemetry.clock.monotonic() - self._started),
        }
        if self._first_token is not None:
            fields["ttft_ms"] = _ms(self._first_token)
        if error is not None:
            fields["error"] = type(error).__name__
        if self._reply is not None:
            fields["message_text"] = self._message
            fields["reply_text"] = "".join(self._reply)
        logger.log(level, "run %s", status, extra=fields)


def create_telemetry(settings: Settings, *, clock: Clock) -> Telemetry:
    """What this process reports, as the settings ask."""
    return Telemetry(
        Metrics(directory=settings.metrics_dir),
        clock=clock,
        tracing=create_tracing(settings),
        log_content=settings.log_content,
    )


def create_tracing(settings: Settings) -> Tracing | None:
    """OpenTelemetry tracing when ``AGENTHOST_OTEL_ENABLED``; needs the ``otel`` extra."""
    if not settings.otel_enabled:
        return None
    try:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

        from agenthost.observability.tracing import Tracing
    except ImportError as exc:
        raise ConfigurationError(
            "AGENTHOST_OTEL_ENABLED=true needs the otel extra: pip install 'agenthost[otel]'"
        ) from exc
    exporter: SpanExporter | None = None
    kind = settings.otel_exporter
    match kind:
        case "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )
            except ImportError as exc:
                raise ConfigurationError(
                    "AGENTHOST_OTEL_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http "
                    "(in the otel extra: pip install 'agenthost[otel]')"
                ) from exc
            exporter = OTLPSpanExporter()
        case "console":
            exporter = ConsoleSpanExporter()
        case "none":
            exporter = None
        case _:
            assert_never(kind)
    return Tracing.create(exporter)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
