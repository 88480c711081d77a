"""Lenient OCPP timestamp parsing and strict formatting (RFC 3339, UTC, 'Z')."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_datetime(value: str) -> datetime:
    """Parse an OCPP timestamp; naive values are taken as UTC. Raises ValueError."""
    try:
        dt = datetime.fromisoformat(value)  # the common case, 'Z' included (Python 3.11)
    except ValueError:
        return _parse_lenient(value)
    tz = dt.tzinfo
    if tz is UTC:
        return dt
    return dt.replace(tzinfo=UTC) if tz is None else dt.astimezone(UTC)


def _parse_lenient(value: str) -> datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def format_datetime(dt: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision and a 'Z'."""
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.isoformat(timespec="milliseconds")[:-6] + "Z"  # drop "+00:00"
