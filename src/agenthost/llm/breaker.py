"""``CircuitBreakerModel``: fail fast while a remote model is down, and probe it again.

A model server that is down makes every request wait out its connect or
first-token timeout, and retries multiply the load on a server trying to come
back. The breaker wraps any ``ChatModel`` and keeps three states:

- **closed**: requests go through. Each stream that fails with
  ``ModelUnavailableError`` or ``ModelTimeoutError`` (mid-reply too) counts
  one failure; ``failures`` in a row open it. A stream that finishes resets
  the count, and closes the breaker whatever its state: the model answers.
- **open**: requests fail at once with ``ModelUnavailableError`` carrying
  ``retry_after``, the rest of the cool-down, without touching the model.
- **half-open**: once the cool-down is over, one request goes through as a
  probe while the others still fail fast. The probe's first event proves the
  model answers and closes the breaker (waiting for a whole reply would keep
  everyone else out for its length); a probe that fails re-opens it with the
  cool-down doubled, up to ``max_cooldown``.

Only the model's health counts: a refused request (``ModelRequestRejectedError``)
is the request's fault, a rate limit (``ModelRateLimitedError``) means the
server is up and says itself when to come back, and a stream the consumer
closes early (a cancelled run) says nothing. Those count neither way.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal, assert_never

from agenthost.clock import Clock, SystemClock
from agenthost.errors import ModelError, ModelTimeoutError, ModelUnavailableError
from agenthost.llm.base import (
    ChatModel,
    ModelEvent,
    ModelFinished,
    ModelRequest,
    WrappedModel,
    closing_stream,
)
from agenthost.settings import Settings

__all__ = ["REMOTE_PROVIDERS", "CircuitBreakerModel", "with_circuit_breaker"]

_log = logging.getLogger(__name__)

REMOTE_PROVIDERS = ("openai",)
"""Providers reached over the network: the ones a breaker protects."""
PROBE_RETRY_AFTER = 1.0
"""What requests refused while the probe runs are told to wait: the probe may close it soon."""
BreakerState = Literal["closed", "open", "half_open"]


@dataclass(eq=False, slots=True)
class _Ticket:
    """One admitted stream; ``probe`` while it is the half-open state's single probe."""

    probe: bool


class CircuitBreakerModel(WrappedModel):
    """A ``ChatModel`` that stops calling ``model`` after ``failures`` failures in a row.

    ``cooldown`` is the first wait in seconds before a probe; each failed probe
    doubles it, up to ``max_cooldown`` (four times ``cooldown`` by default).
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        failures: int = 5,
        cooldown: float = 30.0,
        max_cooldown: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        if failures < 1 or cooldown <= 0:
            raise ValueError("a breaker needs failures >= 1 and a positive cooldown")
        super().__init__(model)
        self._threshold = failures
        self._base_cooldown = cooldown
        self._max_cooldown = max(max_cooldown or 4 * cooldown, cooldown)
        self._clock: Clock = clock or SystemClock()
        self._failures = 0
        self._cooldown = cooldown
        self._opened_at: float | None = None
        self._probe: _Ticket | None = None
        self._last_error: ModelError | None = None
        self._listeners: list[Callable[[bool], None]] = []

    @classmethod
    def from_settings(
        cls, model: ChatModel, settings: Settings, *, clock: Clock | None = None
    ) -> CircuitBreakerModel:
        """``model`` behind a breaker configured by the ``breaker_*`` settings."""
        return cls(
            model,
            failures=settings.breaker_failures,
            cooldown=settings.breaker_cooldown_seconds,
            clock=clock,
        )

    def on_change(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(True)`` whenever the circuit opens, ``listener(False)`` when it closes.

        A failed probe re-opens it: that is an opening too.
        """
        self._listeners.append(listener)

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._clock.monotonic() < self._opened_at + self._cooldown:
            return "open"
        return "half_open"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        ticket = self._admit()
        try:
            async with closing_stream(self._model.stream(request)) as events:
                async for event in events:
                    if ticket.probe or isinstance(event, ModelFinished):
                        self._succeeded()
                        ticket.probe = False
                    yield event
        except (ModelUnavailableError, ModelTimeoutError) as error:
            self._failed(ticket, error)
            raise
        finally:
            if ticket.probe and self._probe is ticket:  # ended saying nothing: free the slot
                self._probe = None

    def _admit(self) -> _Ticket:
        """Let a request through (as the probe, when half-open), or fail it fast."""
        match self.state:
            case "closed":
                return _Ticket(probe=False)
            case "open":
                assert self._opened_at is not None
                wait = self._opened_at + self._cooldown - self._clock.monotonic()
                raise self._refusal(f"it will be tried again in {math.ceil(wait)}s", wait)
            case "half_open" if self._probe is not None:
                raise self._refusal(
                    "a request is checking whether it is back; try again in a moment",
                    PROBE_RETRY_AFTER,
                )
            case "half_open":
                self._probe = _Ticket(probe=True)
                return self._probe
            case unreachable:
                assert_never(unreachable)

    def _refusal(self, when: str, retry_after: float) -> ModelUnavailableError:
        last = f" The last failure: {self._last_error.message}" if self._last_error else ""
        return ModelUnavailableError(
            f"The model {self.model_id} is unavailable ({self._failures} failures in a row), "
            f"so requests fail fast for now; {when}.{last}",
            retry_after=retry_after,
        )

    def _succeeded(self) -> None:
        if self._opened_at is not None:
            _log.warning("model %s answers again: circuit closed", self.model_id)
            self._tell(is_open=False)
        self._failures = 0
        self._cooldown = self._base_cooldown
        self._opened_at = None
        self._probe = None
        self._last_error = None

    def _failed(self, ticket: _Ticket, error: ModelError) -> None:
        if self._opened_at is None:
            self._failures += 1
            self._last_error = error
            if self._failures >= self._threshold:
                self._open()
        elif ticket is self._probe:
            self._failures += 1
            self._last_error = error
            self._cooldown = min(self._cooldown * 2, self._max_cooldown)
            self._open()
        # Otherwise a stream begun before the breaker opened: already accounted for.

    def _open(self) -> None:
        self._opened_at = self._clock.monotonic()
        self._probe = None
        _log.warning(
            "model %s failed %d times in a row: circuit open, next probe in %gs",
            self.model_id,
            self._failures,
            self._cooldown,
        )
        self._tell(is_open=True)

    def _tell(self, *, is_open: bool) -> None:
        for listener in self._listeners:
            listener(is_open)


def with_circuit_breaker(
    model: ChatModel, settings: Settings, *, clock: Clock | None = None
) -> ChatModel:
    """``model`` behind a breaker when it is remote (``REMOTE_PROVIDERS``), else as it is.

    The embedded and test models fail with the process, not with a network, so
    a breaker would only hide their errors.
    """
    provider = model.model_id.partition(":")[0]
    if provider not in REMOTE_PROVIDERS:
        return model
    return CircuitBreakerModel.from_settings(model, settings, clock=clock)
