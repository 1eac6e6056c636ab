"""`since` as people and models write it: `2h`, `30m`, `3d`, `1w`, `yesterday`, `today`, or an
ISO date or time (UTC when no zone is given)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RELATIVE = re.compile(r"^(\d{1,4})\s*(m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)$")
_UNITS = {"m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """The moment `text` names; `ValueError` with the accepted forms otherwise."""
    now = now or datetime.now(UTC)
    value = text.strip().lower()
    if value == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if value == "yesterday":
        return now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    if match := _RELATIVE.match(value):
        return now - timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)[0]])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"since {text!r} is not a time I understand; use e.g. 2h, 30m, 3d, 1w, yesterday "
            "or 2026-11-20"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
