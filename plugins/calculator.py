"""Arithmetic by parsing (never eval), with limits on size."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from core.plugin import ToolError, tool

MAX_LENGTH = 500
MAX_DEPTH = 50
MAX_EXPONENT = 10_000
MAX_FACTORIAL = 1_000
MAX_DIGITS = 2_000

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "min": min,
    "max": max,
    "factorial": math.factorial,
}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _power(base: Any, exponent: Any) -> Any:
    if abs(exponent) > MAX_EXPONENT or (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and exponent * math.log10(abs(base)) > MAX_DIGITS
    ):
        raise ToolError(f"the result of {base} ** {exponent} would be too large")
    return base**exponent


def _evaluate(node: ast.AST, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise ToolError("the expression is nested too deeply")
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, depth + 1)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _evaluate(node.operand, depth + 1)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, depth + 1), _evaluate(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        return _BINARY[type(node.op)](left, right)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
    ):
        if node.keywords:
            raise ToolError("functions take positional arguments only")
        args = [_evaluate(arg, depth + 1) for arg in node.args]
        if node.func.id == "factorial" and (
            not args or not isinstance(args[0], int) or args[0] > MAX_FACTORIAL
        ):
            raise ToolError(f"factorial takes a whole number up to {MAX_FACTORIAL}")
        return _FUNCTIONS[node.func.id](*args)
    raise ToolError(f"unsupported element in the expression: {ast.dump(node)[:60]}")


def _format(value: Any) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.12g}"
    text = str(value)
    if len(text) > MAX_DIGITS:
        raise ToolError("the result has too many digits to show")
    return text


@tool
def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression exactly and return the result.

    Supports + - * / // % ** (also × ÷ −), parentheses, pi, e, tau and sqrt, abs, round, floor,
    ceil, log, log10, log2, exp, sin, cos, tan, asin, acos, atan, min, max, factorial.

    Args:
        expression: the expression, for example "(2 + 3) * sqrt(16)"
    """
    text = expression.replace("×", "*").replace("÷", "/").replace("−", "-").replace("^", "**")
    if len(text) > MAX_LENGTH:
        raise ToolError(f"the expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ToolError(f"could not parse {expression!r} as arithmetic") from None
    try:
        return _format(_evaluate(tree))
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except (ValueError, OverflowError) as exc:
        raise ToolError(f"math error: {exc}") from None
    except TypeError as exc:
        raise ToolError(f"wrong arguments: {exc}") from None
