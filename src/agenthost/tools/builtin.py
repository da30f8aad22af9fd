"""The tools agenthost ships: a safe calculator and the current time.

The calculator parses the expression into a syntax tree and evaluates only
numbers, arithmetic operators and a short list of math functions; nothing is
ever passed to ``eval``. Exponents and operand sizes are bounded, so a request
like ``9**9**9`` is refused instead of eating the CPU.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agenthost.clock import Clock
from agenthost.errors import ToolError
from agenthost.tools.function import FunctionTool

MAX_EXPRESSION_CHARS = 500
MAX_EXPONENT = 1000
MAX_INT_DIGITS = 4000

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTANTS: dict[str, Number] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression and return the result.

    Supports + - * / // % ** and parentheses, the constants pi, e and tau, and
    the functions abs, round, min, max, sqrt, exp, log, log10, log2, sin, cos,
    tan, asin, acos, atan, floor and ceil.

    Args:
        expression: The expression, for example "(2 + 3) * 4" or "sqrt(2) / 2".
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError):
        raise ToolError(f"not an arithmetic expression: {expression!r}") from None
    try:
        value = _evaluate(tree.body)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except (OverflowError, ValueError) as exc:
        raise ToolError(f"cannot compute: {exc}") from None
    return _format(value)


def _evaluate(node: ast.expr) -> Number:
    match node:
        case ast.Constant(value=bool()):
            raise ToolError("booleans are not numbers here")
        case ast.Constant(value=int() | float() as value):
            return value
        case ast.Name(id=name) if name in _CONSTANTS:
            return _CONSTANTS[name]
        case ast.UnaryOp(op=op, operand=operand) if type(op) in _UNARY:
            return _UNARY[type(op)](_evaluate(operand))
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINARY:
            return _binary(type(op), _evaluate(left), _evaluate(right))
        case ast.Call(func=ast.Name(id=name), args=args, keywords=[]) if name in _FUNCTIONS:
            return _FUNCTIONS[name](*(_evaluate(arg) for arg in args))
        case _:
            raise ToolError(f"unsupported in an expression: {ast.unparse(node)!r}")


def _binary(op: type[ast.operator], left: Number, right: Number) -> Number:
    if op is ast.Pow and abs(right) > MAX_EXPONENT and abs(left) not in (0, 1):
        raise ToolError(f"exponent larger than {MAX_EXPONENT}")
    result = _BINARY[op](left, right)
    if isinstance(result, int) and result.bit_length() > MAX_INT_DIGITS * 3.33:
        raise ToolError(f"result has more than {MAX_INT_DIGITS} digits")
    if isinstance(result, complex):
        raise ToolError("the result is not a real number")
    return result


def _format(value: Number) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return format(value, ".12g")
    return str(value)


def current_time_tool(clock: Clock) -> FunctionTool[[str], str]:
    """The ``current_time`` tool, reading the time from ``clock``."""

    def current_time(timezone: str = "UTC") -> str:
        """Get the current date and time.

        Args:
            timezone: An IANA time zone name such as "Europe/Paris" or "UTC".
        """
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ToolError(
                f"unknown time zone {timezone!r}; use a name like 'Europe/Paris'"
            ) from None
        now: datetime = clock.now().astimezone(zone)
        return now.strftime("%A %Y-%m-%d %H:%M:%S %Z (UTC%z)")

    return FunctionTool(current_time)


def calculator_tool() -> FunctionTool[[str], str]:
    return FunctionTool(calculate, name="calculator")
