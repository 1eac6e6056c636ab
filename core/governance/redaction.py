"""Redacting sensitive values from text before it goes to an AI model, and restoring them after.

`redact` replaces e-mail addresses, phone numbers, payment-card numbers (Luhn-checked), IBANs
(ISO 13616 mod-97-checked) and token-shaped secrets with placeholders such as ``[EMAIL_1]``;
`restore` puts the original values back wherever the model's reply contains such a placeholder
exactly. A `Placeholders` object holds one conversation's mapping, so a value keeps its placeholder
from message to message; it serialises to JSON for storage.

Detection favours precision: dates, times, versions, IP addresses, ids, hashes and prices pass
through unchanged. Detectors run in a fixed order (secrets, e-mails, IBANs, cards, phones) and
each character belongs to at most one match, so a token is never split and a card number is never
also taken for a phone number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

EMAIL = "EMAIL"
PHONE = "PHONE"
CARD = "CARD"
IBAN = "IBAN"
SECRET = "SECRET"

_PLACEHOLDER = re.compile(r"\[(EMAIL|PHONE|CARD|IBAN|SECRET)_([0-9]+)\]")
_MASK = "\x00"
"""Stands in for an already matched character while later detectors scan (matches no pattern)."""

# Top-level names that are file extensions rather than real TLDs, as in "icon@2x.png".
_FILE_EXTENSION = re.compile(
    r"png|jpe?g|gif|svg|webp|ico|pdf|txt|log|json|ya?ml|toml|html?|css|[cm]?js|jsx|tsx?|lock", re.I
)


@dataclass
class Placeholders:
    """Per-conversation mapping between original values and placeholders; JSON-serialisable."""

    by_value: dict[str, str] = field(default_factory=dict)
    """Original value -> placeholder, e.g. ``"ada@example.com" -> "[EMAIL_1]"``."""

    def to_json(self) -> str:
        """The mapping as a JSON object, for storing with the conversation."""
        return json.dumps({"by_value": self.by_value}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | None) -> Placeholders:
        """Load what `to_json` wrote; None or "" gives an empty mapping. Raises ValueError."""
        if not text:
            return cls()
        data = json.loads(text)
        by_value = data.get("by_value") if isinstance(data, dict) else None
        if not isinstance(by_value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in by_value.items()
        ):
            raise ValueError("not a Placeholders JSON object")
        return cls(by_value=dict(by_value))


# --- validators: each takes a candidate value and returns the length accepted (0 rejects it) ---


def _whole(ok: Callable[[str], bool]) -> Callable[[str], int]:
    return lambda value: len(value) if ok(value) else 0


def _has_digit(value: str) -> bool:
    return any(ch.isdigit() for ch in value)


def _mixed_token(value: str) -> bool:
    """Random-looking: has a digit, an upper-case and a lower-case letter."""
    return _has_digit(value) and value.lower() != value and value.upper() != value


def _email_ok(value: str) -> bool:
    local, _, domain = value.rpartition("@")
    labels = domain.split(".")
    return (
        not local.startswith(".")
        and not local.endswith(".")
        and ".." not in local
        and not any(label.startswith("-") or label.endswith("-") for label in labels)
        and not _FILE_EXTENSION.fullmatch(labels[-1])
    )


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_ok(value: str) -> bool:
    digits = value.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and digits[0] != "0" and _luhn(digits)


def _card_length(value: str) -> int:
    """The whole value if it is a card number, else a card number followed by a short group
    (as in "4111 1111 1111 1111 12/26")."""
    if _card_ok(value):
        return len(value)
    head, sep, tail = value.rpartition(" " if " " in value else "-")
    return len(head) if sep and len(tail) < 4 and head.count(sep) >= 3 and _card_ok(head) else 0


def _iban_valid(compact: str) -> bool:
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _iban_length(value: str) -> int:
    """The longest valid IBAN the value starts with, dropping trailing groups (e.g. a word)."""
    groups = value.split(" ")
    for n in range(len(groups), 0, -1):
        candidate = " ".join(groups[:n])
        if _iban_valid(candidate.replace(" ", "")):
            return len(candidate)
    return 0


def _intl_phone_ok(value: str) -> bool:
    digits = sum(ch.isdigit() for ch in value)
    opened = value.count("(")
    return 8 <= digits <= 15 and opened == value.count(")") and opened <= 1


# --- detectors: a pattern whose group "v" is the candidate value, and its validator ---


@dataclass(frozen=True, slots=True)
class _Detector:
    kind: str
    pattern: re.Pattern[str]
    accept: Callable[[str], int]


_ALWAYS = _whole(lambda _value: True)
_TOKEN_START = r"(?<![\w.\-])"
_TOKEN_END = r"(?![\w\-])"
_NUMBER_END = r"(?![\w]|[.\-][0-9])"

_DETECTORS: tuple[_Detector, ...] = (
    _Detector(  # OpenAI keys: sk-... and sk-proj-...
        SECRET,
        re.compile(_TOKEN_START + r"(?P<v>sk-[A-Za-z0-9_\-]{20,}+)" + _TOKEN_END),
        _whole(lambda v: _has_digit(v[3:])),
    ),
    _Detector(  # Slack bot, user, workspace-app and app-level tokens
        SECRET,
        re.compile(
            _TOKEN_START
            + r"(?P<v>(?:xox[abp]|xapp)-[A-Za-z0-9]++(?:-[A-Za-z0-9]++)++)"
            + _TOKEN_END
        ),
        _whole(lambda v: len(v) >= 20 and _has_digit(v[5:])),
    ),
    _Detector(  # GitHub personal, OAuth, user, server and refresh tokens; fine-grained PATs
        SECRET,
        re.compile(
            _TOKEN_START
            + r"(?P<v>gh[pousr]_[A-Za-z0-9]{20,}+|github_pat_[A-Za-z0-9_]{20,}+)"
            + _TOKEN_END
        ),
        _whole(lambda v: _has_digit(v[4:])),
    ),
    _Detector(  # AWS access key ids (long-term and temporary)
        SECRET,
        re.compile(r"(?<![A-Za-z0-9])(?P<v>(?:AKIA|ASIA)[0-9A-Z]{16})(?![A-Za-z0-9])"),
        _ALWAYS,
    ),
    _Detector(  # Discord bot tokens (and JWTs): three base64url segments
        SECRET,
        re.compile(
            _TOKEN_START
            + r"(?P<v>[A-Za-z0-9_\-]{24,}+\.[A-Za-z0-9_\-]{6,}+\.[A-Za-z0-9_\-]{20,}+)"
            + r"(?![\w\-]|\.[\w\-])"
        ),
        _whole(_mixed_token),
    ),
    _Detector(  # the token after "Bearer"; the word itself stays
        SECRET,
        re.compile(
            r"(?<![\w\-])(?i:bearer)[ \t]++"
            r"(?P<v>[A-Za-z0-9_~+/\-]++(?:\.[A-Za-z0-9_~+/\-]++)*+=*+)(?![\w~+/=\-])"
        ),
        _whole(lambda v: len(v) >= 16 and _has_digit(v)),
    ),
    _Detector(
        EMAIL,
        re.compile(
            r"(?<![\w.%+\-])(?P<v>[A-Za-z0-9._%+\-]++@(?:[A-Za-z0-9\-]++\.)+[A-Za-z]{2,63})"
            r"(?![\w\-]|\.[A-Za-z0-9]|:[\w/~])"  # ":..." after it is an SSH remote, not mail
        ),
        _whole(_email_ok),
    ),
    _Detector(  # compact, or grouped in 4s with single spaces
        IBAN,
        re.compile(
            r"(?<![\w])(?P<v>[A-Z]{2}[0-9]{2}"
            r"(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?))(?![\w])"
        ),
        _iban_length,
    ),
    _Detector(  # contiguous, or grouped 4-4-4-4(-3), 4-4-4-1..3, 4-6-4, 4-6-5 by " " or "-"
        CARD,
        re.compile(
            r"(?<![\w.+\-])(?<![0-9][ \-])(?P<v>[0-9]{13,19}|[0-9]{4}(?P<sep>[ \-])"
            r"(?:[0-9]{4}(?P=sep)[0-9]{4}(?P=sep)[0-9]{1,4}(?:(?P=sep)[0-9]{1,3})?"
            r"|[0-9]{6}(?P=sep)[0-9]{4,5}))"
            r"(?![\w\-]|\.[0-9])(?!(?P=sep)[0-9])"
        ),
        _card_length,
    ),
    _Detector(  # international: "+" then digits with single separators and one (group)
        PHONE,
        re.compile(
            r"(?<![\w+])(?P<v>\+[0-9]"
            r"(?:[0-9]|[ .\-](?=[0-9(])|\((?=[0-9]{1,5}\))|\)(?=[ .\-]?[0-9]))*+)(?![\w(])"
        ),
        _whole(_intl_phone_ok),
    ),
    _Detector(  # North American: (415) 555-0132
        PHONE,
        re.compile(
            r"(?<![\w.+\-])(?P<v>\([2-9][0-9]{2}\) ?[2-9][0-9]{2}[\-. ][0-9]{4})" + _NUMBER_END
        ),
        _ALWAYS,
    ),
    _Detector(  # North American: 415-555-0132, 415.555.0132, 1-800-555-0199
        PHONE,
        re.compile(
            r"(?<![\w.+\-])(?P<v>(?:1[\-.])?[2-9][0-9]{2}(?P<sep>[\-.])[2-9][0-9]{2}(?P=sep)[0-9]{4})"
            + _NUMBER_END
        ),
        _ALWAYS,
    ),
)


def _find(text: str) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, kind) matches in text order, earlier detectors first."""
    found: list[tuple[int, int, str]] = []
    scanned = text
    for detector in _DETECTORS:
        spans: list[tuple[int, int]] = []
        for match in detector.pattern.finditer(scanned):
            start = match.start("v")
            length = detector.accept(match.group("v"))
            if length:
                spans.append((start, start + length))
        if spans:
            found.extend((start, end, detector.kind) for start, end in spans)
            parts: list[str] = []
            pos = 0
            for start, end in spans:
                parts += [scanned[pos:start], _MASK * (end - start)]
                pos = end
            scanned = "".join([*parts, scanned[pos:]])
    return sorted(found)


def _next_numbers(placeholders: Placeholders) -> dict[str, int]:
    """Per kind, the number after the highest one already used."""
    numbers: dict[str, int] = {}
    for placeholder in placeholders.by_value.values():
        match = _PLACEHOLDER.fullmatch(placeholder)
        if match:
            kind, n = match[1], int(match[2])
            numbers[kind] = max(numbers.get(kind, 1), n + 1)
    return numbers


def redact(text: str, placeholders: Placeholders) -> str:
    """Replace sensitive values with placeholders; the same value always gets the same placeholder
    within one Placeholders (new values are added to it)."""
    found = _find(text)
    if not found:
        return text
    numbers = _next_numbers(placeholders)
    parts: list[str] = []
    pos = 0
    for start, end, kind in found:
        value = text[start:end]
        placeholder = placeholders.by_value.get(value)
        if placeholder is None:
            n = numbers.get(kind, 1)
            numbers[kind] = n + 1
            placeholder = placeholders.by_value[value] = f"[{kind}_{n}]"
        parts += [text[pos:start], placeholder]
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def restore(text: str, placeholders: Placeholders) -> str:
    """Put the original values back where the text contains their placeholders."""
    if "[" not in text or not placeholders.by_value:
        return text
    originals = {placeholder: value for value, placeholder in placeholders.by_value.items()}
    return _PLACEHOLDER.sub(lambda match: originals.get(match[0], match[0]), text)
