"""Payload fields that the 1.6 and 2.0.1 handlers and converters read the same way, with the
same CallError.

A timestamp the schema lets through but Python cannot read (a leap second, ``23:59:60``)
is a PropertyConstraintViolation in both versions: the kind the schemas give a string that
is not a date-time, so a station hears one answer for one mistake, whoever catches it.
"""

from __future__ import annotations

from datetime import datetime

from csms.ocpp.session import HandlerError
from ocppj.framing import ErrorKind
from ocppj.timestamps import parse_datetime


def read_timestamp(value: str) -> datetime:
    """``value`` as an aware UTC datetime; raises ``HandlerError`` when it cannot be read."""
    try:
        return parse_datetime(value)
    except ValueError:
        raise HandlerError(ErrorKind.PROPERTY, f"timestamp {value!r} is not RFC 3339") from None
