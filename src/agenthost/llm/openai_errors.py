"""How failures of an OpenAI-compatible server become agenthost ``ModelError``s.

The connection fails, or the server answers with an error status and body, or
sends an ``error`` object in its stream, in the provider's own words. Callers
of a ``ChatModel`` only ever see the agenthost tree, with a message that names
the server, says what went wrong and what to change, and never carries the API
key or a stack trace. ``UpstreamErrors`` holds what those messages need (host,
model, the key to scrub) so the streaming code stays short.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from agenthost.errors import (
    ModelError,
    ModelRateLimitedError,
    ModelRequestRejectedError,
    ModelTimeoutError,
    ModelUnavailableError,
)

TimeoutPhase = Literal["connect", "first_token", "idle", "total"]

_PROVIDER_MESSAGE_LIMIT = 300
_TIMEOUT_ADVICE: dict[TimeoutPhase, tuple[str, str]] = {
    "connect": (
        "could not be reached within {seconds:g}s (connect timeout)",
        "Check the network and the base URL, or raise AGENTHOST_OPENAI_CONNECT_TIMEOUT.",
    ),
    "first_token": (
        "sent no output within {seconds:g}s (first-token timeout)",
        "The server may be overloaded or the prompt very long; "
        "raise AGENTHOST_OPENAI_FIRST_TOKEN_TIMEOUT if that is expected.",
    ),
    "idle": (
        "stopped sending output for {seconds:g}s mid-reply (idle timeout)",
        "The server may be overloaded; raise AGENTHOST_OPENAI_IDLE_TIMEOUT if that is expected.",
    ),
    "total": (
        "did not finish the reply within {seconds:g}s (total timeout)",
        "Ask for shorter replies (max_tokens) or raise AGENTHOST_OPENAI_TOTAL_TIMEOUT.",
    ),
}


def host_of(base_url: str) -> str:
    """The part of a base URL worth showing a person: ``host[:port]``, never credentials."""
    parts = urlsplit(base_url)
    if parts.hostname is None:
        return base_url.rpartition("@")[2]
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


def retry_after_seconds(headers: Mapping[str, str], *, now: datetime) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` or ``Retry-After``), if any."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(float(raw_ms) / 1000, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)


@dataclass(frozen=True, slots=True)
class UpstreamErrors:
    """Builds the agenthost errors for one configured server and model."""

    host: str
    model: str
    connect_timeout: float
    api_key: str | None = field(default=None, repr=False)

    def timeout(self, phase: TimeoutPhase, seconds: float) -> ModelTimeoutError:
        what, advice = _TIMEOUT_ADVICE[phase]
        message = f"The model server at {self.host} {what.format(seconds=seconds)}. {advice}"
        return ModelTimeoutError(message, phase=phase)

    def malformed_chunk(self) -> ModelUnavailableError:
        return ModelUnavailableError(
            f"The model server at {self.host} sent a malformed stream chunk (not valid JSON). "
            "Check that the base URL points at an OpenAI-compatible server."
        )

    def from_transport(self, error: BaseException) -> ModelError:
        """The agenthost error for a connection that failed (refused, reset, TLS, timeouts)."""
        if isinstance(error, TimeoutError):  # the connect timeout
            return self.timeout("connect", self.connect_timeout)
        return ModelUnavailableError(
            f"Cannot reach the model server at {self.host}, or it dropped the connection. "
            "Check that it is running and that OPENAI_BASE_URL points at it."
        )

    def mid_stream(self, reported: object) -> ModelUnavailableError:
        """An ``error`` object the server sent in place of a chunk."""
        said = reported.get("message") if isinstance(reported, dict) else None
        if not isinstance(said, str) or not said:
            said = "An error occurred during streaming"
        return ModelUnavailableError(
            f"The model server at {self.host} reported an error mid-reply"
            f"{self._provider_says(said)}. Try again later."
        )

    def from_status(
        self, status: int, headers: Mapping[str, str], raw: bytes, *, now: datetime
    ) -> ModelError:
        """The agenthost error for an HTTP error status, from its headers and body."""
        body = _error_body(raw)
        said = body.get("message") if isinstance(body, dict) else None
        provider_says = self._provider_says(said if isinstance(said, str) else "")
        where = f"The model server at {self.host}"
        if status == 429:
            wait = retry_after_seconds(headers, now=now)
            hint = f"; retry after {wait:g}s" if wait is not None else "; try again later"
            return ModelRateLimitedError(
                f"{where} is rate limiting requests (429){hint}.", retry_after=wait
            )
        if status == 401:
            return ModelRequestRejectedError(
                f"{where} rejected the API key (401). Check OPENAI_API_KEY."
            )
        if status == 403:
            return ModelRequestRejectedError(
                f"{where} refused access to model {self.model!r} (403). "
                "Check that OPENAI_API_KEY may use this model."
            )
        if status == 404:
            return ModelRequestRejectedError(
                f"{where} does not know model {self.model!r} (404){provider_says}. "
                "Check the model id (openai:<model>) and OPENAI_BASE_URL (it usually ends in /v1)."
            )
        if status >= 500:
            return ModelUnavailableError(f"{where} failed (HTTP {status}). Try again later.")
        return ModelRequestRejectedError(f"{where} rejected the request ({status}){provider_says}.")

    def _provider_says(self, said: str) -> str:
        """The provider's own explanation, shortened and with the API key scrubbed."""
        said = " ".join(said.split())
        if self.api_key:
            said = said.replace(self.api_key, "[API key]")
        if not said:
            return ""
        if len(said) > _PROVIDER_MESSAGE_LIMIT:
            said = said[: _PROVIDER_MESSAGE_LIMIT - 1] + "…"
        return f": {said}"


def _error_body(raw: bytes) -> object:
    """An error response's JSON, unwrapped from ``{"error": {...}}`` as OpenAI sends it."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body.get("error", body) if isinstance(body, dict) else body
