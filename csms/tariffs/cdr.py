"""Charge detail records: one per completed session, with its price and its signed meter data.

``Cdr`` is what the store keeps and the API exports (JSON, CSV). Money is a decimal string in
the tariff's currency; the signed meter values are kept exactly as the station sent them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from csms.core.model import Transaction
from csms.core.station_events import SignedMeterValue
from csms.tariffs.pricing import Cost, CostLine, decimal_text
from ocppj.timestamps import format_datetime


@dataclass(frozen=True, slots=True)
class Cdr:
    station_id: str
    tx_id: str
    site_id: str | None
    evse_id: int
    connector_id: int
    id_tag: str | None
    started_at: datetime
    stopped_at: datetime
    energy_wh: Decimal
    duration_s: int
    idle_s: int
    tariff_id: str | None
    tariff_version: int | None
    currency: str | None
    excl_vat: Decimal | None
    vat: Decimal | None
    incl_vat: Decimal | None
    lines: tuple[dict[str, str | int], ...]
    stop_reason: str | None
    signed_data: tuple[dict[str, Any], ...]
    flags: tuple[str, ...] = ()
    cdr_id: int | None = None
    created_at: datetime | None = None
    repriced_at: datetime | None = None


def line_json(ln: CostLine) -> dict[str, str | int]:
    return {
        "dimension": ln.dimension.value, "element": ln.element, "quantity": decimal_text(ln.quantity),
        "unit_price": str(ln.unit_price), "amount": decimal_text(ln.amount),
        "vat_percent": str(ln.vat_percent),
    }


def signed_json(v: SignedMeterValue) -> dict[str, Any]:
    return {
        "at": format_datetime(v.at),
        "station_time": format_datetime(v.station_time) if v.station_time else None,
        "context": v.context, "measurand": v.measurand, "encoding": v.encoding,
        "signing_method": v.signing_method, "public_key": v.public_key, "data": v.data,
    }


def build_cdr(
    tx: Transaction, cost: Cost | None, signed: Sequence[SignedMeterValue], *, site_id: str | None,
    energy_wh: Decimal, extra_flags: Sequence[str] = (),
) -> Cdr:
    """The record of a completed transaction (``tx.stopped_at`` set); ``cost`` None: no tariff."""
    assert tx.started_at is not None and tx.stopped_at is not None
    duration = max(0, int((tx.stopped_at - tx.started_at).total_seconds()))
    flags = (*(cost.flags if cost else ()), *extra_flags, *tx.flags)
    base = (tx.station_id, tx.tx_id, site_id, tx.evse_id, tx.connector_id, tx.id_tag, tx.started_at,
            tx.stopped_at)
    kept = tuple(signed_json(v) for v in signed)
    if cost is None:
        nothing = (None, None, None, None, None, None, ())
        return Cdr(*base, energy_wh, duration, 0, *nothing, tx.stop_reason, kept, tuple(dict.fromkeys(flags)))
    return Cdr(
        *base, cost.energy_wh, duration, int(cost.idle_s), cost.tariff_id, cost.tariff_version, cost.currency,
        cost.excl_vat, cost.vat, cost.incl_vat, tuple(line_json(ln) for ln in cost.lines), tx.stop_reason,
        kept, tuple(dict.fromkeys(flags)),
    )


def _money(d: Decimal | None) -> str | None:
    return None if d is None else str(d)


def cdr_json(c: Cdr) -> dict[str, Any]:
    return {
        "id": c.cdr_id, "charger_id": c.station_id, "transaction_id": c.tx_id, "site_id": c.site_id,
        "evse_id": c.evse_id, "connector_id": c.connector_id, "id_tag": c.id_tag,
        "started_at": format_datetime(c.started_at), "stopped_at": format_datetime(c.stopped_at),
        "energy_wh": decimal_text(c.energy_wh, 3), "duration_s": c.duration_s, "idle_s": c.idle_s,
        "tariff_id": c.tariff_id, "tariff_version": c.tariff_version, "currency": c.currency,
        "total_excl_vat": _money(c.excl_vat), "total_vat": _money(c.vat),
        "total_incl_vat": _money(c.incl_vat),
        "cost_lines": list(c.lines), "stop_reason": c.stop_reason, "signed_meter_values": list(c.signed_data),
        "flags": list(c.flags),
        "created_at": format_datetime(c.created_at) if c.created_at else None,
        "repriced_at": format_datetime(c.repriced_at) if c.repriced_at else None,
    }


CSV_COLUMNS = (
    "id", "charger_id", "transaction_id", "site_id", "evse_id", "connector_id", "id_tag", "started_at",
    "stopped_at", "energy_wh", "duration_s", "idle_s", "tariff_id", "tariff_version", "currency",
    "total_excl_vat", "total_vat", "total_incl_vat", "cost_lines", "stop_reason", "signed_meter_values",
    "flags",
)


_TEXT_COLUMNS = frozenset({"charger_id", "transaction_id", "site_id", "id_tag", "tariff_id", "currency",
                           "stop_reason", "flags"})
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(name: str, value: str) -> str:
    """Text a station or operator chose never reaches a spreadsheet as a formula: a cell starting
    with = + - @ or a control character gets a leading apostrophe."""
    return "'" + value if name in _TEXT_COLUMNS and value.startswith(_FORMULA_START) else value


def csv_row(c: Cdr) -> list[str]:
    """The record as CSV cells: lists as compact JSON, absent values empty, text cells that a
    spreadsheet would take for a formula escaped with a leading apostrophe."""
    view = cdr_json(c)
    cells = []
    for name in CSV_COLUMNS:
        value = view[name]
        if name in ("cost_lines", "signed_meter_values"):
            cells.append(json.dumps(value, separators=(",", ":"), ensure_ascii=False) if value else "")
        elif name == "flags":
            cells.append(" ".join(value))
        else:
            cells.append("" if value is None else _cell(name, str(value)))
    return cells
