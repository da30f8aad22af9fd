"""Tools from typed Python functions: ``@tool`` builds the schema and validates calls.

The JSON schema comes from the signature (through a Pydantic model, so any type
Pydantic understands works) and the docstring (summary plus per-argument
descriptions in Google, NumPy or reST style). Sync functions run in a worker
thread so a slow tool never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar, cast, get_type_hints, overload

import docstring_parser
import pydantic
import pydantic_core

from agenthost.errors import ConfigurationError, ToolError

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_TOOL_TIMEOUT = 30.0


class FunctionTool(Generic[P, R]):
    """A ``Tool`` that calls a Python function; still callable as the function."""

    def __init__(
        self,
        function: Callable[P, R] | Callable[P, Awaitable[R]],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float = DEFAULT_TOOL_TIMEOUT,
    ) -> None:
        if timeout <= 0:
            raise ConfigurationError("a tool's timeout must be positive")
        self._function = function
        self._name = name or function.__name__
        doc = docstring_parser.parse(inspect.getdoc(function) or "")
        self._description = description or _describe(doc)
        self._arguments_model = _arguments_model(function, doc)
        self._parameters = _schema(self._arguments_model)
        self._timeout = timeout
        self._is_async = inspect.iscoroutinefunction(function)

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str:
        return self._description

    @property
    def parameters(self) -> dict[str, Any]:
        return self._parameters

    @property
    def timeout(self) -> float:
        return self._timeout

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R | Awaitable[R]:
        return self._function(*args, **kwargs)

    async def call(self, arguments: str) -> str:
        kwargs = self._validate(arguments)
        if self._is_async:
            async_function = cast(Callable[..., Awaitable[R]], self._function)
            result: object = await async_function(**kwargs)
        else:
            result = await asyncio.to_thread(self._function, **kwargs)
        return _render(result)

    def _validate(self, arguments: str) -> dict[str, Any]:
        try:
            raw = json.loads(arguments or "{}")
        except json.JSONDecodeError as exc:
            raise ToolError(f"arguments are not valid JSON ({exc.msg})") from None
        if not isinstance(raw, dict):
            raise ToolError("arguments must be a JSON object")
        try:
            parsed = self._arguments_model.model_validate(raw)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ToolError(f"invalid arguments: {problems}") from None
        return {field: getattr(parsed, field) for field in type(parsed).model_fields}


@overload
def tool(function: Callable[P, R], /) -> FunctionTool[P, R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float = DEFAULT_TOOL_TIMEOUT,
) -> Callable[[Callable[P, R]], FunctionTool[P, R]]: ...


def tool(
    function: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float = DEFAULT_TOOL_TIMEOUT,
) -> FunctionTool[P, R] | Callable[[Callable[P, R]], FunctionTool[P, R]]:
    """Make a typed function (sync or async) into a tool: ``@tool`` or ``@tool(timeout=5)``."""

    def wrap(fn: Callable[P, R]) -> FunctionTool[P, R]:
        return FunctionTool(fn, name=name, description=description, timeout=timeout)

    return wrap(function) if function is not None else wrap


def _describe(doc: docstring_parser.Docstring) -> str:
    parts = [part for part in (doc.short_description, doc.long_description) if part]
    return "\n\n".join(parts)


def _arguments_model(
    function: Callable[..., object], doc: docstring_parser.Docstring
) -> type[pydantic.BaseModel]:
    signature = inspect.signature(function)
    hints = get_type_hints(function, include_extras=True)
    described = {param.arg_name: param.description for param in doc.params}
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ConfigurationError(
                f"tool {function.__name__!r}: parameter {param.name!r} must be "
                "passable by keyword (no *args, **kwargs or positional-only)"
            )
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (
            annotation,
            pydantic.Field(default, description=described.get(param.name)),
        )
    model_name = f"{function.__name__}_arguments"
    config = pydantic.ConfigDict(extra="forbid")
    return pydantic.create_model(model_name, __config__=config, **fields)


def _schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    return schema


def _render(result: object) -> str:
    if isinstance(result, str):
        return result
    return pydantic_core.to_json(result, fallback=str).decode()
