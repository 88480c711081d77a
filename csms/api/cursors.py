"""Opaque paging cursors: what a listing needs to continue, base64url-encoded JSON.

A cursor names its listing (``kind``) so one from another listing, or a forged one, is refused
with ``BadCursor`` (the routes answer 400).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import orjson

from csms.core.ports import TxKey, TxOrder
from ocppj.timestamps import format_datetime, parse_datetime


class BadCursor(ValueError):
    """The cursor was not made by this listing."""


def _encode(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def _decode(cursor: str) -> object:
    try:
        return orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise BadCursor("cursor is not one this listing returned") from exc


def offset_cursor(offset: int) -> str:
    """A station-list cursor: the position of the next page's first row."""
    return _encode({"k": "stations", "o": offset})


def read_offset(cursor: str) -> int:
    value = _decode(cursor)
    if not isinstance(value, dict) or value.get("k") != "stations":
        raise BadCursor("cursor is not one this listing returned")
    offset = value.get("o")
    if not isinstance(offset, int) or offset < 0:
        raise BadCursor("cursor is not one this listing returned")
    return offset


def tx_cursor(order: TxOrder, key: TxKey) -> str:
    """A transaction-list cursor: the order and the last row's key."""
    started = format_datetime(key.started_at, timespec="microseconds") if key.started_at else None
    return _encode({"k": "transactions", "s": order.value, "t": started, "c": key.station_id, "x": key.tx_id})


def read_tx_cursor(cursor: str) -> tuple[TxOrder, TxKey]:
    value = _decode(cursor)
    try:
        if not isinstance(value, dict) or value["k"] != "transactions":
            raise BadCursor("cursor is not one this listing returned")
        started = value["t"]
        at: datetime | None = parse_datetime(started) if started is not None else None
        station_id, tx_id = value["c"], value["x"]
        if not isinstance(station_id, str) or not isinstance(tx_id, str):
            raise BadCursor("cursor is not one this listing returned")
        return TxOrder(value["s"]), TxKey(at, station_id, tx_id)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BadCursor):
            raise
        raise BadCursor("cursor is not one this listing returned") from exc


def cdr_cursor(stopped_at: datetime, cdr_id: int) -> str:
    """A CDR-list cursor: the last row's (stopped_at, id)."""
    return _encode({"k": "cdrs", "t": format_datetime(stopped_at, timespec="microseconds"), "i": cdr_id})


def read_cdr_cursor(cursor: str) -> tuple[datetime, int]:
    value = _decode(cursor)
    try:
        if not isinstance(value, dict) or value["k"] != "cdrs" or not isinstance(value["i"], int):
            raise BadCursor("cursor is not one this listing returned")
        return parse_datetime(value["t"]), value["i"]
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BadCursor):
            raise
        raise BadCursor("cursor is not one this listing returned") from exc
