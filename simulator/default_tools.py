"""Unscripted tool use: arithmetic asks call `calculate`, time and date asks call `now`.

Only tools the request offers are ever called, with arguments shaped by the tool's declared JSON
schema; when the last input is a tool result, the answer is text built from that result.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from simulator.schema_fill import fill
from simulator.script import ToolCalls


@dataclass(frozen=True, slots=True)
class OfferedTool:
    """A function tool offered by the request: its name and declared parameters schema."""

    name: str
    parameters: dict[str, Any] | None = None


CALCULATE = "calculate"
NOW = "now"

# -- arithmetic ---------------------------------------------------------------------------

_FUNCTIONS = frozenset(
    [
        "sqrt",
        "abs",
        "round",
        "floor",
        "ceil",
        "log",
        "log10",
        "log2",
        "exp",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "min",
        "max",
        "factorial",
    ]
)
_CONSTANTS = frozenset({"pi", "e", "tau"})
_LEAD = re.compile(
    r"^\s*(?:(?:hey|hi|hello|ok|okay|so|please|quick question)[,!:]?\s+)*"
    r"(?:can you |could you |please )?"
    r"(?:what(?:'s|s| is| are)|how much is|calculate|compute|evaluate|eval|solve|work out)"
    r"(?:\s+the\s+(?:value|result)\s+of)?[:\s]+",
    re.IGNORECASE,
)
_WORD_OPERATORS = (
    (re.compile(r"\bmultiplied\s+by\b", re.I), "*"),
    (re.compile(r"\btimes\b", re.I), "*"),
    (re.compile(r"\bdivided\s+by\b", re.I), "/"),
    (re.compile(r"\bplus\b", re.I), "+"),
    (re.compile(r"\bminus\b", re.I), "-"),
    (re.compile(r"\bto\s+the\s+power\s+of\b", re.I), "^"),
    (re.compile(r"\bmod(?:ulo)?\b", re.I), "%"),
    (re.compile(r"(?<=[\d)])\s*[x×]\s*(?=[\d(])"), " * "),
)
_TOKEN = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+|[A-Za-z_][A-Za-z_0-9]*|\*\*|//|[-+*/%^()×÷−,])")
_OPERATORS = frozenset(["+", "-", "*", "/", "%", "^", "**", "//", "×", "÷", "−"])
_ALLOWED_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Call,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.operator,
    ast.unaryop,
)


def _leading_expression(text: str) -> tuple[str, str]:
    """The longest run of arithmetic tokens at the start of `text`, and what follows it."""
    position, end, depth = 0, 0, 0
    while True:
        match = _TOKEN.match(text, position)
        if match is None:
            break
        token = match.group(1)
        depth += {"(": 1, ")": -1}.get(token, 0)
        if depth < 0 or (token == "," and depth == 0):
            break  # a comma outside a function's parentheses ends the expression
        if token[0].isalpha() or token[0] == "_":
            following = text[match.end() :].lstrip()
            if token.lower() in _CONSTANTS:
                token = token.lower()
            elif not (token.lower() in _FUNCTIONS and following.startswith("(")):
                break
        position = end = match.end()
    return text[:end].strip(), text[end:]


def _is_arithmetic(expression: str) -> bool:
    normal = expression.replace("^", "**").replace("×", "*").replace("÷", "/").replace("−", "-")
    try:
        tree = ast.parse(normal, mode="eval")
    except SyntaxError:
        return False
    nodes = list(ast.walk(tree))
    if not all(isinstance(node, _ALLOWED_NODES) for node in nodes):
        return False
    if any(isinstance(n, ast.Constant) and type(n.value) not in (int, float) for n in nodes):
        return False
    if any(isinstance(n, ast.Name) and n.id not in _FUNCTIONS | _CONSTANTS for n in nodes):
        return False
    # Something to work out: an operator or a function, not a bare number.
    return any(isinstance(node, ast.BinOp | ast.Call) for node in nodes)


def arithmetic_in(text: str) -> str | None:
    """The arithmetic expression `text` asks for ("what is 12*7", "calculate (3+4)/2", "2^10")."""
    text = text.replace("’", "'").strip()
    lead = _LEAD.match(text)
    rest = text[lead.end() :] if lead else text
    for pattern, symbol in _WORD_OPERATORS:
        rest = pattern.sub(symbol, rest)
    expression, after = _leading_expression(rest)
    after = after.strip().strip("?!.=").strip()
    if not expression or not any(ch.isdigit() for ch in expression):
        return None
    if after and not lead:
        return None  # a bare expression must be the whole message ("2^10", "3 + 4 = ?")
    if after and not re.match(r"^(?:[,;]|and\b|please\b|exactly\b|for me\b)", after, re.I):
        return None  # "what is 3 apples..." is not arithmetic
    if not any(op in _tokens(expression) for op in _OPERATORS) and "(" not in expression:
        return None
    return expression if _is_arithmetic(expression) else None


def _tokens(expression: str) -> list[str]:
    return [m.group(1) for m in _TOKEN.finditer(expression)]


# -- time and date ------------------------------------------------------------------------

CITY_ZONES: dict[str, str] = {
    "tokyo": "Asia/Tokyo",
    "japan": "Asia/Tokyo",
    "seoul": "Asia/Seoul",
    "beijing": "Asia/Shanghai",
    "shanghai": "Asia/Shanghai",
    "hong kong": "Asia/Hong_Kong",
    "singapore": "Asia/Singapore",
    "delhi": "Asia/Kolkata",
    "new delhi": "Asia/Kolkata",
    "mumbai": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata",
    "india": "Asia/Kolkata",
    "dubai": "Asia/Dubai",
    "moscow": "Europe/Moscow",
    "istanbul": "Europe/Istanbul",
    "athens": "Europe/Athens",
    "berlin": "Europe/Berlin",
    "paris": "Europe/Paris",
    "madrid": "Europe/Madrid",
    "rome": "Europe/Rome",
    "amsterdam": "Europe/Amsterdam",
    "stockholm": "Europe/Stockholm",
    "london": "Europe/London",
    "dublin": "Europe/Dublin",
    "lisbon": "Europe/Lisbon",
    "new york": "America/New_York",
    "nyc": "America/New_York",
    "boston": "America/New_York",
    "toronto": "America/Toronto",
    "chicago": "America/Chicago",
    "denver": "America/Denver",
    "los angeles": "America/Los_Angeles",
    "san francisco": "America/Los_Angeles",
    "seattle": "America/Los_Angeles",
    "mexico city": "America/Mexico_City",
    "sao paulo": "America/Sao_Paulo",
    "são paulo": "America/Sao_Paulo",
    "buenos aires": "America/Argentina/Buenos_Aires",
    "sydney": "Australia/Sydney",
    "melbourne": "Australia/Melbourne",
    "auckland": "Pacific/Auckland",
    "cairo": "Africa/Cairo",
    "lagos": "Africa/Lagos",
    "nairobi": "Africa/Nairobi",
    "johannesburg": "Africa/Johannesburg",
    "utc": "UTC",
    "gmt": "UTC",
}
_CITY = re.compile(
    r"\b(" + "|".join(re.escape(c) for c in sorted(CITY_ZONES, key=len, reverse=True)) + r")\b"
)
_IANA = re.compile(r"\b([A-Z][A-Za-z]+(?:/[A-Z][A-Za-z_\-]+){1,2})\b")
_TIME_ASK = re.compile(
    r"\bwhat(?:'s|s| is) the (?:time|date|day)\b"
    r"|\bwhat time\b"
    r"|\btime is it\b"
    r"|\b(?:current|local|exact) (?:time|date)\b"
    r"|\bthe time now\b"
    r"|\b(?:the )?date today\b"
    r"|\btoday'?s date\b"
    r"|\bwhat day is (?:it|today)\b"
    r"|\bwhich day is it\b"
    r"|\bwhat(?:'s|s| is) today\b"
    r"|\bwhat (?:year|month) is it\b"
)
_TIME_IN = re.compile(r"\b(?:time|date)\s+(?:is it\s+)?(?:in|at|for)\s+\S")


def zone_in(text: str) -> str | None:
    """An IANA time zone named in `text` (an IANA name, or one of a few cities)."""
    for candidate in _IANA.findall(text):
        try:
            ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            continue
        return str(candidate)
    match = _CITY.search(text.lower())
    return CITY_ZONES[match.group(1)] if match else None


def asks_for_time(text: str) -> tuple[bool, str | None]:
    """Whether `text` asks for the time or date, and the zone it names (if recognisable)."""
    lowered = text.replace("’", "'").lower()
    zone = zone_in(text)
    if _TIME_ASK.search(lowered):
        return True, zone
    return bool(zone and _TIME_IN.search(lowered)), zone  # "time in Tokyo"


# -- arguments from the declared schema ---------------------------------------------------


def _kinds(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind} if isinstance(kind, str) else set()
    for branch in schema.get("anyOf") or schema.get("oneOf") or []:
        if isinstance(branch, dict):
            kinds |= _kinds(branch)
    return kinds


def _string_parameter(schema: dict[str, Any], preferred: tuple[str, ...]) -> str | None:
    """The property to put a string in: the single (required) string one, or a preferred name."""
    properties: dict[str, Any] = schema.get("properties") or {}
    strings = [k for k, v in properties.items() if isinstance(v, dict) and "string" in _kinds(v)]
    required = [k for k in strings if k in (schema.get("required") or [])]
    for group in (required, strings):
        if len(group) == 1:
            return group[0]
        for name in preferred:
            if name in group:
                return name
    return None


def _arguments(
    tool: OfferedTool, value: str | None, preferred: tuple[str, ...], fallback: str | None
) -> dict[str, Any] | None:
    """Schema-valid arguments with `value` in the chosen string property; None when the schema
    has no place for it (and `value` is needed)."""
    schema = tool.parameters
    if not schema or not schema.get("properties"):
        if fallback is None or value is None:
            return {}
        return {fallback: value}
    target = _string_parameter(schema, preferred)
    if target is None:
        return None
    required = set(schema.get("required") or [])
    properties: dict[str, Any] = schema["properties"]
    arguments: dict[str, Any] = {}
    for name, sub in properties.items():
        if name == target:
            if value is not None:
                arguments[name] = value
            elif name in required:
                arguments[name] = None if "null" in _kinds(sub) else _default_zone(sub)
        elif name in required:
            arguments[name] = fill(sub, schema, name)
    return arguments


def _required_filled(schema: dict[str, Any]) -> dict[str, Any]:
    required = set(schema.get("required") or [])
    properties: dict[str, Any] = schema.get("properties") or {}
    return {k: fill(v, schema, k) for k, v in properties.items() if k in required}


def _default_zone(schema: dict[str, Any]) -> str:
    enum = schema.get("enum")
    return "UTC" if not enum or "UTC" in enum else str(enum[0])


def tool_call_for(text: str, tools: tuple[OfferedTool, ...]) -> ToolCalls | None:
    """The call a capable model would make for `text` with these tools offered, if any."""
    offered = {tool.name: tool for tool in tools}
    if CALCULATE in offered and (expression := arithmetic_in(text)) is not None:
        arguments = _arguments(
            offered[CALCULATE], expression, ("expression", "expr", "input", "query"), "expression"
        )
        if arguments is not None:
            return ToolCalls.of((CALCULATE, arguments))
    if NOW in offered:
        wanted, zone = asks_for_time(text)
        if wanted:
            arguments = _arguments(
                offered[NOW], zone, ("timezone", "time_zone", "tz", "zone"), "timezone"
            )
            if arguments is None:  # no string property: call with what the schema demands
                arguments = _required_filled(offered[NOW].parameters or {})
            return ToolCalls.of((NOW, arguments))
    return None


def answer_from(results: tuple[tuple[str, str], ...]) -> str:
    """The text answer after tool results, one sentence per result."""
    sentences = []
    for name, output in results:
        output = output.strip()
        if output.startswith(("error:", "invalid arguments:")):
            sentences.append(f"The {name} tool failed: {output}")
        elif name == CALCULATE:
            sentences.append(f"The result is {output}.")
        elif name == NOW:
            sentences.append(f"It is {output}.")
        else:
            sentences.append(f"{name} returned: {output}")
    return " ".join(sentences)
