"""Tariffs to and from JSON in the shape of OCPI 2.2.1 (prices as decimal strings, never floats).

``from_json`` raises ValueError naming the field that is wrong; ``to_json(from_json(x))`` keeps
every field, so a tariff stored as JSON round-trips exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from csms.tariffs.model import DayOfWeek, Dimension, PriceComponent, Restrictions, Tariff, TariffElement
from ocppj.timestamps import format_datetime

MAX_ELEMENTS = 100
MAX_COMPONENTS = 8


def _decimal(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise ValueError(f"{where}: a decimal number (as a string, e.g. \"0.40\") is required")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{where}: {value!r} is not a decimal number") from None
    if not d.is_finite() or abs(d) >= Decimal(10) ** 12 or d.as_tuple().exponent < -6:  # type: ignore[operator]
        raise ValueError(f"{where}: {value!r} is out of range (at most 6 decimals, below 10^12)")
    return d


def _opt_decimal(raw: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    value = raw.get(key)
    return None if value is None else _decimal(value, f"{where}.{key}")


def _int(
    raw: Mapping[str, Any], key: str, where: str, *, low: int = 0, default: int | None = None
) -> int | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{where}.{key}: an integer of at least {low} is required")
    return value


def _clock(raw: Mapping[str, Any], key: str, where: str) -> time | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        raise ValueError(f"{where}.{key}: HH:MM is required")
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{where}.{key}: {value!r} is not a time of day") from None


def _date(raw: Mapping[str, Any], key: str, where: str) -> date | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{where}.{key}: YYYY-MM-DD is required")


def _obj(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: an object is required")
    return value


def _list(value: object, where: str, most: int) -> Sequence[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: a list is required")
    if len(value) > most:
        raise ValueError(f"{where}: at most {most} entries")
    return value


_RESTRICTION_KEYS = {
    "start_time", "end_time", "start_date", "end_date", "min_kwh", "max_kwh", "min_duration", "max_duration",
    "min_power", "max_power", "day_of_week",
}


def _restrictions(raw: Mapping[str, Any], where: str) -> Restrictions:
    unknown = set(raw) - _RESTRICTION_KEYS
    if unknown:
        raise ValueError(f"{where}: unsupported restrictions {', '.join(sorted(unknown))}")
    days = _list(raw.get("day_of_week", []), f"{where}.day_of_week", 7)
    try:
        weekdays = frozenset(DayOfWeek(d) for d in days)
    except ValueError:
        raise ValueError(f"{where}.day_of_week: MONDAY .. SUNDAY") from None
    return Restrictions(
        start_time=_clock(raw, "start_time", where), end_time=_clock(raw, "end_time", where),
        start_date=_date(raw, "start_date", where), end_date=_date(raw, "end_date", where),
        min_kwh=_opt_decimal(raw, "min_kwh", where), max_kwh=_opt_decimal(raw, "max_kwh", where),
        min_duration_s=_int(raw, "min_duration", where), max_duration_s=_int(raw, "max_duration", where),
        min_power_kw=_opt_decimal(raw, "min_power", where),
        max_power_kw=_opt_decimal(raw, "max_power", where),
        day_of_week=weekdays,
    )


def _component(raw: Mapping[str, Any], where: str) -> PriceComponent:
    try:
        kind = Dimension(str(raw.get("type")))
    except ValueError:
        raise ValueError(f"{where}.type: one of {', '.join(d.value for d in Dimension)}") from None
    step = _int(raw, "step_size", where, low=1, default=1)
    assert step is not None
    try:
        return PriceComponent(kind, _decimal(raw.get("price"), f"{where}.price"), step,
                              _opt_decimal(raw, "vat", where))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def from_json(raw: object, *, tariff_id: str | None = None, version: int = 1) -> Tariff:
    """A tariff from its JSON (``tariff_id`` from the path wins over the body's)."""
    body = _obj(raw, "tariff")
    elements = []
    for i, e in enumerate(_list(body.get("elements"), "elements", MAX_ELEMENTS)):
        e = _obj(e, f"elements[{i}]")
        comps = _list(e.get("price_components"), f"elements[{i}].price_components", MAX_COMPONENTS)
        if not comps:
            raise ValueError(f"elements[{i}].price_components: at least one is required")
        at = f"elements[{i}]"
        components = tuple(
            _component(_obj(c, f"{at}.price_components[{j}]"), f"{at}.price_components[{j}]")
            for j, c in enumerate(comps)
        )
        where = f"{at}.restrictions"
        restrictions = _restrictions(_obj(e.get("restrictions", {}), where), where)
        elements.append(TariffElement(components, restrictions))
    alt = []
    for i, t in enumerate(_list(body.get("alt_text", []), "alt_text", 20)):
        t = _obj(t, f"alt_text[{i}]")
        lang, text = t.get("language"), t.get("text")
        if not (isinstance(lang, str) and 2 <= len(lang) <= 8 and isinstance(text, str) and len(text) <= 512):
            raise ValueError(f"alt_text[{i}]: language (2-8 characters) and text (at most 512) are required")
        alt.append((lang, text))
    tid = tariff_id or body.get("tariff_id")
    if not isinstance(tid, str) or not tid:
        raise ValueError("tariff_id: required")
    currency = body.get("currency")
    if not isinstance(currency, str):
        raise ValueError("currency: an ISO 4217 code such as EUR is required")
    grace = _int(body, "idle_grace_s", "tariff", default=0)
    assert grace is not None
    try:
        return Tariff(
            tid, currency, tuple(elements), vat_percent=_decimal(body.get("vat_percent", "0"), "vat_percent"),
            min_price=_opt_decimal(body, "min_price", "tariff"),
            max_price=_opt_decimal(body, "max_price", "tariff"),
            idle_grace_s=grace, version=version, alt_text=tuple(alt),
        )
    except ValueError as exc:
        raise ValueError(f"tariff: {exc}") from None


def _restrictions_json(r: Restrictions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (("start_time", r.start_time), ("end_time", r.end_time)):
        if value is not None:
            out[key] = value.strftime("%H:%M")
    for key, d in (("start_date", r.start_date), ("end_date", r.end_date)):
        if d is not None:
            out[key] = d.isoformat()
    for key, n in (("min_kwh", r.min_kwh), ("max_kwh", r.max_kwh), ("min_power", r.min_power_kw),
                   ("max_power", r.max_power_kw)):
        if n is not None:
            out[key] = str(n)
    for key, s in (("min_duration", r.min_duration_s), ("max_duration", r.max_duration_s)):
        if s is not None:
            out[key] = s
    if r.day_of_week:
        out["day_of_week"] = [d.value for d in DayOfWeek if d in r.day_of_week]
    return out


def to_json(t: Tariff, *, created_at: datetime | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tariff_id": t.tariff_id, "version": t.version, "currency": t.currency,
        "vat_percent": str(t.vat_percent),
        "min_price": None if t.min_price is None else str(t.min_price),
        "max_price": None if t.max_price is None else str(t.max_price),
        "idle_grace_s": t.idle_grace_s,
        "alt_text": [{"language": lang, "text": text} for lang, text in t.alt_text],
        "elements": [{
            "price_components": [
                {"type": c.type.value, "price": str(c.price), "step_size": c.step_size,
                 **({"vat": str(c.vat)} if c.vat is not None else {})}
                for c in e.components
            ],
            "restrictions": _restrictions_json(e.restrictions),
        } for e in t.elements],
    }
    if created_at is not None:
        out["created_at"] = format_datetime(created_at)
    return out

