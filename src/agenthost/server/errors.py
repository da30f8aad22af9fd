"""The one table from errors to HTTP, and the handlers that answer with the error envelope.

Every error response is ``{"error", "detail", "request_id"}`` (routes under
``/v1/`` use OpenAI's ``{"error": {"message", "type", "code"}}`` so the SDKs
raise the right exception). Nothing from a stack trace or a dependency's own
message ever reaches ``error``: unexpected exceptions are logged and answered
with a plain "Internal server error".
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agenthost import errors

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Mapping:
    status: int
    openai_type: str


# Most specific first: the first class an error is an instance of wins.
STATUS_TABLE: tuple[tuple[type[errors.AgentHostError], Mapping], ...] = (
    (errors.AuthenticationError, Mapping(401, "authentication_error")),
    (errors.PermissionDeniedError, Mapping(403, "permission_error")),
    (errors.RateLimitedError, Mapping(429, "rate_limit_error")),
    (errors.SessionNotFoundError, Mapping(404, "not_found_error")),
    (errors.RunNotFoundError, Mapping(404, "not_found_error")),
    (errors.AgentNotFoundError, Mapping(404, "not_found_error")),
    (errors.InvalidIdError, Mapping(422, "invalid_request_error")),
    (errors.InvalidRequestError, Mapping(422, "invalid_request_error")),
    (errors.IdempotencyConflictError, Mapping(422, "invalid_request_error")),
    (errors.SessionBusyError, Mapping(409, "conflict_error")),
    (errors.ContextWindowExceededError, Mapping(400, "invalid_request_error")),
    (errors.ModelTimeoutError, Mapping(504, "timeout_error")),
    (errors.ModelRateLimitedError, Mapping(502, "upstream_rate_limit_error")),
    (errors.ModelError, Mapping(502, "upstream_error")),
    (errors.ServerStoppingError, Mapping(503, "service_unavailable_error")),
    (errors.StoreUnavailableError, Mapping(503, "service_unavailable_error")),
    (errors.AgentHostError, Mapping(500, "server_error")),
)

SERVER_ERROR = Mapping(500, "server_error")
STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable_error",
}
STATUS_MESSAGES = {
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Unsupported media type: send JSON (Content-Type: application/json)",
}


def mapping_for(error: errors.AgentHostError) -> Mapping:
    for cls, mapping in STATUS_TABLE:
        if isinstance(error, cls):
            return mapping
    return SERVER_ERROR  # pragma: no cover - AgentHostError is in the table


def retry_after(error: errors.AgentHostError) -> float | None:
    match error:
        case errors.StoreUnavailableError(retry_after=seconds):
            return seconds
        case errors.ModelRateLimitedError(retry_after=seconds):
            return seconds
        case errors.RateLimitedError(retry_after=seconds):
            return seconds
        case errors.ServerStoppingError():
            return 5.0
        case errors.ModelUnavailableError(retry_after=seconds):
            return 5.0 if seconds is None else seconds
        case _:
            return None


def request_id_of(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def envelope(
    path: str,
    status: int,
    message: str,
    *,
    request_id: str | None,
    detail: object = None,
    openai_type: str | None = None,
) -> dict[str, object]:
    """The error body: the envelope, or OpenAI's error shape under ``/v1/``."""
    if path.startswith("/v1/"):
        kind = openai_type or STATUS_TYPES.get(status, "server_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}
    return {"error": message, "detail": detail, "request_id": request_id}


def error_response(
    request: Request,
    status: int,
    message: str,
    *,
    detail: object = None,
    openai_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = envelope(
        request.url.path,
        status,
        message,
        request_id=request_id_of(request),
        detail=detail,
        openai_type=openai_type,
    )
    return JSONResponse(body, status_code=status, headers=headers)


async def _agenthost_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.AgentHostError)
    mapping = mapping_for(exc)
    if mapping.status >= 500 and mapping.status != 503:
        logger.warning("%s: %s", type(exc).__name__, exc.message)
    if isinstance(exc, errors.RateLimitedError):
        telemetry = getattr(request.app.state, "telemetry", None)
        if telemetry is not None:
            telemetry.metrics.record_rate_limited(exc.limit)
    headers = _extra_headers(exc)
    seconds = retry_after(exc)
    if seconds is not None and mapping.status in (429, 502, 503):
        headers["Retry-After"] = str(max(1, math.ceil(seconds)))
    return error_response(
        request, mapping.status, exc.message, openai_type=mapping.openai_type, headers=headers
    )


def _extra_headers(error: errors.AgentHostError) -> dict[str, str]:
    match error:
        case errors.AuthenticationError(reason="missing"):
            return {"WWW-Authenticate": 'Bearer realm="agenthost"'}
        case errors.AuthenticationError():
            return {"WWW-Authenticate": 'Bearer realm="agenthost", error="invalid_token"'}
        case errors.RateLimitedError(headers=headers):
            return dict(headers)
        case _:
            return {}


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    details = [{"loc": list(err["loc"]), "msg": err["msg"]} for err in problems]
    if any(err.get("type") == "json_invalid" for err in problems):
        message = "Invalid request: the body is not valid JSON"
    elif problems:
        where = ".".join(str(part) for part in problems[0]["loc"] if part != "body")
        message = f"Invalid request: {where or 'body'}: {problems[0]['msg']}"
    else:  # pragma: no cover - pydantic always says what failed
        message = "Invalid request"
    return error_response(request, 422, message, detail=details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else None
    if not message or message in ("Not Found", "Method Not Allowed"):
        message = STATUS_MESSAGES.get(exc.status_code, "Request failed")
    return error_response(request, exc.status_code, message, headers=dict(exc.headers or {}))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, 500, "Internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.AgentHostError, _agenthost_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
