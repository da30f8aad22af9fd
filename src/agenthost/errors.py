"""The one exception tree of agenthost.

Every error the project raises on purpose is an ``AgentHostError``; the HTTP layer
maps each class to a status code in one table, and the CLI prints ``str(error)``.
Messages are written for the person who has to act on them: they say what went
wrong and what to do, and never carry a raw dependency message or a secret.

    AgentHostError
    ├── ConfigurationError          bad settings, unknown model id, missing extra
    ├── InvalidRequestError         a request outside the server's limits
    ├── AuthenticationError         no API key, or not a valid one (401)
    ├── PermissionDeniedError       a valid key that may not do this (403)
    ├── RateLimitedError            over a rate, token or stream limit (429)
    ├── AgentNotFoundError          no agent of that name is hosted
    ├── ContextWindowExceededError  the current turn alone does not fit the model
    ├── ModelError                  the model could not produce a reply
    │   ├── ModelUnavailableError   cannot connect, 5xx, circuit open
    │   ├── ModelTimeoutError       connect, first-token, idle or total timeout
    │   ├── ModelRateLimitedError   the provider said 429 (``retry_after``)
    │   └── ModelRequestRejectedError  the provider refused the request (4xx)
    ├── ToolError                   raised by a tool: its message goes to the model
    ├── KnowledgeError              a document cannot be ingested, or no such knowledge base
    ├── ServerStoppingError         the server is shutting down; retry elsewhere soon
    └── StoreError                  the session store could not do what was asked
        ├── StoreUnavailableError   the database is down, locked or timed out
        ├── InvalidIdError          a malformed id, rejected before any query
        ├── SessionNotFoundError    unknown session (or not the caller's)
        ├── RunNotFoundError        unknown run (or not the caller's)
        ├── SessionBusyError        another reply holds the session's lease
        ├── IdempotencyConflictError  an Idempotency-Key reused with another body
        └── SchemaVersionError      the database schema is newer than this code

``ModelError`` carries ``retryable``: whether trying again later may succeed.
"""

from __future__ import annotations


class AgentHostError(Exception):
    """Base class of every error agenthost raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(AgentHostError):
    """The settings, a model id or an agent reference cannot be used."""


class InvalidRequestError(AgentHostError):
    """A request the server will not run: over a configured limit, or inconsistent."""


class AuthenticationError(AgentHostError):
    """The request has no API key, or one that is malformed, unknown or revoked."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class PermissionDeniedError(AgentHostError):
    """The key is valid but may not do this."""


class RateLimitedError(AgentHostError):
    """Over one of the caller's limits; ``retry_after`` says when to try again."""

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        retry_after: float,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.retry_after = retry_after
        self.headers = headers or {}


class AgentNotFoundError(AgentHostError):
    """No agent of that name is hosted here."""

    def __init__(self, name: str, *, available: tuple[str, ...] = ()) -> None:
        hint = f" (available: {', '.join(available)})" if available else ""
        super().__init__(f"Agent not found: {name!r}{hint}")
        self.name = name


class ContextWindowExceededError(AgentHostError):
    """The newest message alone does not fit the model's context budget."""


class ModelError(AgentHostError):
    """The model could not produce a reply."""

    retryable: bool = False


class ModelUnavailableError(ModelError):
    """The model cannot be reached or failed on its side; try again later.

    ``retry_after`` is set when the wait is known (an open circuit breaker).
    """

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelTimeoutError(ModelError):
    """The model did not answer within one of the configured timeouts."""

    retryable = True

    def __init__(self, message: str, *, phase: str) -> None:
        super().__init__(message)
        self.phase = phase


class ModelRateLimitedError(ModelError):
    """The model provider is rate limiting us."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelRequestRejectedError(ModelError):
    """The provider refused the request itself (bad request, auth, unknown model)."""


class ToolError(AgentHostError):
    """Raised inside a tool: the message becomes the tool result the model reads."""


class KnowledgeError(AgentHostError):
    """A document that cannot be read or parsed, or a knowledge base that cannot be used."""


class ServerStoppingError(AgentHostError):
    """The server is shutting down: new work is refused, running replies are interrupted."""

    def __init__(
        self, message: str = "The server is restarting; send the message again in a moment"
    ) -> None:
        super().__init__(message)


class StoreError(AgentHostError):
    """The session store could not do what was asked."""


class StoreUnavailableError(StoreError):
    """The database is down, locked or too slow; the server keeps running and retries."""

    def __init__(
        self, message: str = "The session store is unavailable", *, retry_after: float = 1.0
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidIdError(StoreError):
    """An id that cannot be one of ours; rejected before any query."""


class SessionNotFoundError(StoreError):
    def __init__(self, message: str = "Session not found") -> None:
        super().__init__(message)


class RunNotFoundError(StoreError):
    def __init__(self, message: str = "Run not found") -> None:
        super().__init__(message)


class SessionBusyError(StoreError):
    """A reply is already running in this session."""

    def __init__(self, message: str = "Session busy") -> None:
        super().__init__(message)


class IdempotencyConflictError(StoreError):
    """An Idempotency-Key was reused with a different request."""


class SchemaVersionError(StoreError):
    """The database's schema is newer than this code knows; refuse to start."""
