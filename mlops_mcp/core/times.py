"""Times and durations as callers write them: one parser for each, the same rules everywhere.

Times are ISO 8601 ('2024-03-01', '2024-03-01T18:30', '...Z', '...+01:00'); a time without a zone
is UTC. Durations are a number and a unit ('30m', '6h', '1d', '2w') or plain seconds.
"""

import re
from datetime import UTC, datetime

from mlops_mcp.core.errors import InvalidInput

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

TIME_HELP = "e.g. '2024-03-01', '2024-03-01T18:30:00Z' or '2024-03-01T18:30:00+01:00' (no zone = UTC)"


def now() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str | datetime | None, argument: str) -> datetime | None:
    """An aware UTC datetime, or None for None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = value.strip() if isinstance(value, str) else ""
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            shown = value if len(str(value)) <= 40 else f"{str(value)[:40]}..."
            raise InvalidInput(f"{shown!r} is not an ISO 8601 time; {TIME_HELP}", argument=argument) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_duration(
    value: str | int | float,
    argument: str,
    *,
    minimum: float = 1,
    maximum: float = 366 * 86400,
    whole: bool = False,
) -> float:
    """Seconds from '30m', '6h', '1d', '2w', '90s' or a number of seconds; bounded. ``whole``
    requires a whole number of units (bucket widths: '1.5h' is refused, '90m' accepted)."""
    if isinstance(value, bool):
        match = None
    elif isinstance(value, (int, float)):
        match = _DURATION_RE.match(str(value))
    else:
        match = _DURATION_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise InvalidInput(
            f"{str(value)[:40]!r} is not a duration; give a number and a unit: s, m (minutes), h, d or w, "
            "e.g. '30m', '6h', '1d', '7d'",
            argument=argument,
        )
    if whole and "." in match.group(1):
        raise InvalidInput(f"{str(value)[:40]!r}: give a whole number of units, e.g. '90m' rather than '1.5h'", argument=argument)
    seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if not minimum <= seconds <= maximum:
        raise InvalidInput(
            f"{str(value)[:40]!r} is outside {describe_seconds(minimum)}..{describe_seconds(maximum)}",
            argument=argument,
        )
    return seconds


def describe_seconds(seconds: float) -> str:
    """The largest whole unit: 86400 -> '1d', 5400 -> '90m'."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
