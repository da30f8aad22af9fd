"""``ReplyLanes``: the routes that start replies, answered without FastAPI's per-request layers.

``POST /chat``, ``/chat/stream`` and ``/v1/chat/completions`` are the busiest
routes. Under FastAPI 0.165 a request to one of them went through the exception
middleware, the exit-stack middleware, the router's included-router matching,
the route's two exit stacks and exception wrapper, and dependency solving: in a
profile of bench scenario (r), 16% of the server's CPU, three times what the
endpoint itself took (docs/performance.md).

This middleware, the innermost of the app's own (so body limits, CORS, request
ids and the access log still apply), answers those routes itself, by method and
exact path. It does what FastAPI's handler would, in FastAPI's order: read the
body and parse it as JSON when its content type says JSON (a syntax error is a
422 at once), run the router's dependencies and then the endpoint's (each takes
only the request), validate the headers and then the body with pydantic,
collecting every error into one ``RequestValidationError``, call the same
endpoint function, and serialise what it returns as FastAPI would. Errors go to
the app's exception handlers as FastAPI's exception middleware would send them.
A test sends the same requests, good and bad, through both and compares the
responses.

The endpoints stay FastAPI routes: their declarations make the OpenAPI schema,
and while ``app.dependency_overrides`` is set (a test or an embedding app
replacing a dependency) their requests go through FastAPI, which honours it.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import params
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Lane", "ReplyLanes"]

Dependency = Callable[[Request], Awaitable[object]]
Endpoint = Callable[..., Awaitable[object]]
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class _Header:
    parameter: str
    alias: str  # the header's name, as declared (error locations say it so)
    adapter: TypeAdapter[Any]
    default: object


class Lane:
    """``endpoint`` answered at ``POST path``; ``dependencies`` are its router's.

    The endpoint may take a request body (one pydantic model), the ``Request``,
    dependencies (``Annotated[T, Depends(f)]`` with ``async def f(request)``)
    and headers (``Annotated[str | None, Header(alias=...)]`` with a default);
    anything else is refused when the lane is made, not at the first request.
    What it returns is sent as FastAPI would: a ``Response`` as it is, a value
    of its return annotation's pydantic model as that model's JSON (its
    ``response_model``), anything else through ``jsonable_encoder``.
    """

    def __init__(
        self, path: str, endpoint: Endpoint, *, dependencies: Sequence[Dependency] = ()
    ) -> None:
        self.path = path
        self.endpoint = endpoint
        self.dependencies = tuple(_checked_dependency(d) for d in dependencies)
        self.body_parameter = ""
        self.body: TypeAdapter[Any] | None = None
        self.request_parameter: str | None = None
        self.endpoint_dependencies: list[tuple[str, Dependency]] = []
        self.headers: list[_Header] = []
        hints = typing.get_type_hints(endpoint, include_extras=True)
        for name, parameter in inspect.signature(endpoint).parameters.items():
            self._take(name, hints[name], parameter.default)
        if self.body is None:
            raise TypeError(f"{endpoint.__name__}: a lane's endpoint takes a request body")
        returned = hints.get("return")
        self.response: TypeAdapter[Any] | None = (
            TypeAdapter(returned) if _is_model(returned) else None
        )

    def _take(self, name: str, hint: Any, default: object) -> None:
        if hint is Request:
            self.request_parameter = name
            return
        if _is_model(hint) and self.body is None:
            self.body_parameter, self.body = name, TypeAdapter(hint)
            return
        if typing.get_origin(hint) is Annotated:
            for marker in hint.__metadata__:
                if isinstance(marker, params.Depends) and marker.dependency is not None:
                    call = _checked_dependency(marker.dependency)
                    self.endpoint_dependencies.append((name, call))
                    return
                if isinstance(marker, params.Header) and isinstance(marker.alias, str):
                    if default is inspect.Parameter.empty:
                        break  # a required header: not needed yet, so not supported
                    header = _Header(name, marker.alias, TypeAdapter(hint), default)
                    self.headers.append(header)
                    return
        raise TypeError(f"{self.endpoint.__name__}: a lane cannot fill the parameter {name!r}")


class ReplyLanes:
    """Answers each lane's requests itself; everything else goes on to ``app``."""

    def __init__(self, app: ASGIApp, *, lanes: Sequence[Lane]) -> None:
        self.app = app
        self._lanes = {lane.path: lane for lane in lanes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = (
            self._lanes.get(_route_path(scope))
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        owner = scope.get("app")
        if lane is None or owner is None or getattr(owner, "dependency_overrides", None):
            await self.app(scope, receive, send)
            return
        scope["route"] = lane
        scope["endpoint"] = lane.endpoint
        scope["path_params"] = {}
        await _Answer(scope, receive, send, lane).run(owner)


class _Answer:
    """One request on a lane, from its body to its response."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, lane: Lane) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.lane = lane
        self.started = False

    async def run(self, app: object) -> None:
        request = Request(self.scope, self.receive, self.send)
        try:
            response = await self._respond(request)
            await response(self.scope, self.receive, self._sender)
        except Exception as error:
            response = await self._handled(app, request, error)
            await response(self.scope, self.receive, self._sender)
            error.__traceback__ = None  # a reused exception would collect tracebacks

    async def _sender(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)

    async def _respond(self, request: Request) -> Response:
        lane = self.lane
        body = await _json_body(request)
        for dependency in lane.dependencies:
            await dependency(request)
        arguments: dict[str, object] = {}
        if lane.request_parameter is not None:
            arguments[lane.request_parameter] = request
        for name, dependency in lane.endpoint_dependencies:
            arguments[name] = await dependency(request)
        errors: list[Any] = []
        for header in lane.headers:
            value = request.headers.get(header.alias, _MISSING)
            location = ("header", header.alias)
            arguments[header.parameter] = _validated(
                header.adapter, value, header.default, location, errors
            )
        assert lane.body is not None
        arguments[lane.body_parameter] = _validated(lane.body, body, _MISSING, ("body",), errors)
        if errors:
            raise RequestValidationError(errors, body=None if body is _MISSING else body)
        result = await lane.endpoint(**arguments)
        if isinstance(result, Response):
            return result
        if lane.response is not None:
            return Response(lane.response.dump_json(result), media_type="application/json")
        return JSONResponse(jsonable_encoder(result))

    async def _handled(self, app: object, request: Request, error: Exception) -> Response:
        """The app's response to ``error``, as Starlette's exception middleware gives it."""
        handler = _handler_for(getattr(app, "exception_handlers", {}), error)
        if handler is None:
            raise error
        if self.started:
            raise RuntimeError("Caught handled exception, but response already started.") from error
        if inspect.iscoroutinefunction(handler):
            response = await handler(request, error)
        else:
            response = await run_in_threadpool(handler, request, error)
        if not isinstance(response, Response):  # pragma: no cover - our handlers always answer
            raise error
        return response


async def _json_body(request: Request) -> object:
    """The body as FastAPI reads it: parsed when its content type is JSON, else the bytes."""
    raw = await request.body()
    if not raw:
        return _MISSING
    content_type = request.headers.get("content-type")
    if not content_type or not _is_json(content_type):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        problem = {
            "type": "json_invalid",
            "loc": ("body", error.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": error.msg},
        }
        raise RequestValidationError([problem], body=error.doc) from error
    except Exception as error:  # undecodable bytes, as FastAPI answers them
        raise HTTPException(
            status_code=400, detail="There was an error parsing the body"
        ) from error


def _is_json(content_type: str) -> bool:
    """``application/json`` or ``application/*+json``, as ``email.message`` would parse it."""
    kind = content_type.split(";", 1)[0].strip().lower()
    main, slash, sub = kind.partition("/")
    return (
        bool(slash)
        and "/" not in sub
        and main == "application"
        and (sub == "json" or sub.endswith("+json"))
    )


def _route_path(scope: Scope) -> str:
    """The path within the app, as Starlette's router matches it (less a mount's root path)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path


def _validated(
    adapter: TypeAdapter[Any],
    value: object,
    default: object,
    loc: tuple[str, ...],
    errors: list[Any],
) -> object:
    if value is _MISSING:
        if default is not _MISSING:
            return default
        errors.append({"type": "missing", "loc": loc, "msg": "Field required", "input": None})
        return None
    try:
        return adapter.validate_python(value, from_attributes=True)
    except ValidationError as error:
        errors.extend(
            {**problem, "loc": (*loc, *problem["loc"])}
            for problem in error.errors(include_url=False)
        )
        return None


def _handler_for(
    handlers: dict[Any, Callable[..., Any]], error: Exception
) -> Callable[..., Any] | None:
    if isinstance(error, HTTPException) and error.status_code in handlers:
        return handlers[error.status_code]
    for kind in type(error).__mro__:
        if kind is Exception:
            return None  # the server-error middleware's, outside
        if kind in handlers:
            return handlers[kind]
    return None


def _checked_dependency(call: Callable[..., Any]) -> Dependency:
    parameters = list(inspect.signature(call).parameters.values())
    hints = typing.get_type_hints(call)
    if (
        not inspect.iscoroutinefunction(call)
        or len(parameters) != 1
        or hints.get(parameters[0].name) is not Request
    ):
        raise TypeError(f"{call.__name__}: a lane's dependency is `async def f(request: Request)`")
    return typing.cast(Dependency, call)


def _is_model(hint: object) -> bool:
    return isinstance(hint, type) and issubclass(hint, BaseModel)
