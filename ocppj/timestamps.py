"""OCPP timestamps: lenient parsing, strict formatting (RFC 3339 in UTC with a 'Z').

The one place the CSMS and the fleet turn timestamps into text and back. Standard library only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

Timespec = Literal["auto", "seconds", "milliseconds", "microseconds"]


def as_utc(dt: datetime) -> datetime:
    """``dt`` in UTC; a naive datetime is taken to be UTC already."""
    tz = dt.tzinfo
    if tz is UTC:
        return dt
    return dt.replace(tzinfo=UTC) if tz is None else dt.astimezone(UTC)


def parse_datetime(value: str) -> datetime:
    """An OCPP timestamp as an aware UTC datetime; naive values are taken as UTC. Raises ValueError.

    Lenient: 'Z' or 'z' or an offset, surrounding blanks, any number of fraction digits.
    """
    try:
        dt = datetime.fromisoformat(value)  # the common case, 'Z' included (Python 3.11)
    except ValueError:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text)
    return as_utc(dt)


def format_datetime(dt: datetime, *, timespec: Timespec = "milliseconds") -> str:
    """RFC 3339 in UTC with a 'Z' (naive = UTC); ``timespec`` as for ``datetime.isoformat``."""
    if dt.tzinfo is not UTC:
        dt = as_utc(dt)
    return dt.isoformat(timespec=timespec)[:-6] + "Z"  # drop "+00:00"
