"""The price of a charging session under a tariff: pure, exact (``Decimal``), OCPI 2.2.1 rules.

The session is cut into stretches at every meter reading, at every local time where an
element's restrictions may change (its start/end times, midnight), where the session's energy or
duration crosses a restriction's bound, where charging ended and where the idle grace ended.
Energy between two readings is spread evenly over their interval. In each stretch, each
dimension is priced by the first element that has a component of it and whose restrictions
hold (OCPI's rule); FLAT is priced once, by the first element that holds at the start.

Whole steps: each dimension's total quantity is rounded up to the ``step_size`` of the last
component that priced it, the remainder at that component's price. Money is rounded once, at
the end, half up to the currency's minor unit: the total excl. VAT, then the VAT.
"""

from __future__ import annotations

import decimal
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from csms.tariffs.model import WEEKDAYS, Dimension, PriceComponent, Restrictions, Tariff, TariffElement

_CTX = decimal.Context(prec=40, rounding=ROUND_HALF_UP)
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "ISK": 0, "HUF": 2, "KWD": 3, "BHD": 3, "JOD": 3, "OMR": 3, "TND": 3}
_US = Decimal(1_000_000)
_KWH = Decimal(1000)
_HOUR_S = Decimal(3600)


@dataclass(frozen=True, slots=True)
class MeterReading:
    """The energy register (Wh) at a time."""

    at: datetime
    register_wh: Decimal


@dataclass(frozen=True, slots=True)
class SessionUsage:
    """What a session used: its times and its energy register over time.

    ``readings`` should hold the start and stop registers; ``charging_ended_at`` None means
    "when the energy stopped rising" (the end of the last interval that added energy).
    """

    started_at: datetime
    stopped_at: datetime
    readings: tuple[MeterReading, ...] = ()
    charging_ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CostLine:
    """One dimension priced by one element: quantity (kWh, hours, sessions) x unit price."""

    dimension: Dimension
    element: int  # index in the tariff's elements; -1 for a min/max price adjustment
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # exact, excl. VAT
    vat_percent: Decimal


@dataclass(frozen=True, slots=True)
class Cost:
    """The price of a session and how it came about."""

    currency: str
    tariff_id: str
    tariff_version: int
    lines: tuple[CostLine, ...]
    energy_wh: Decimal
    charging_s: Decimal
    idle_s: Decimal  # after charging ended, grace included
    billed_idle_s: Decimal
    excl_vat: Decimal
    vat: Decimal
    incl_vat: Decimal
    flags: tuple[str, ...] = field(default=())  # meter_reset, no_meter_data, min_price, max_price


def _us(dt: datetime) -> int:
    """Microseconds since the epoch (exact arithmetic on times)."""
    delta = dt.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _dt(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


@dataclass(slots=True)
class _Use:
    component: PriceComponent
    quantity: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class _Interval:
    start: int
    end: int
    wh: Decimal


def _intervals(usage: SessionUsage, start: int, stop: int, flags: list[str]) -> list[_Interval]:
    readings = sorted(usage.readings, key=lambda r: r.at)
    if len(readings) < 2:
        flags.append("no_meter_data")
        return []
    out = []
    base = readings[0]
    for following in readings[1:]:
        a, b = base, following
        wh = b.register_wh - a.register_wh
        base = b
        if wh < 0:
            if b.register_wh < a.register_wh / 2:  # the register restarted: bill what it counted since
                flags.append("meter_reset")
                wh = b.register_wh
            else:  # a reading that went back a little (rounding, a late sample): no energy, never a
                flags.append("meter_backwards")  # refund; the higher register stays the base
                wh = Decimal(0)
                base = MeterReading(b.at, a.register_wh)
        a_us, b_us = _us(a.at), _us(b.at)
        if b_us < start or a_us > stop:
            continue
        t1, t2 = max(a_us, start), min(b_us, stop)
        if b_us > a_us and (t1 > a_us or t2 < b_us):  # cut at the session's edges: its share only
            wh = _CTX.divide(_CTX.multiply(wh, Decimal(t2 - t1)), Decimal(b_us - a_us))
        out.append(_Interval(t1, t2, wh))
    return out


def _energy_between(intervals: Sequence[_Interval], a: int, b: int, *, last: bool) -> Decimal:
    """Energy in [a, b); instant energy (a zero-length interval) counts where it happened."""
    total = Decimal(0)
    for iv in intervals:
        if iv.end == iv.start:
            if a <= iv.start < b or (last and iv.start == b):
                total += iv.wh
            continue
        lo, hi = max(a, iv.start), min(b, iv.end)
        if hi > lo:
            total += _CTX.divide(_CTX.multiply(iv.wh, Decimal(hi - lo)), Decimal(iv.end - iv.start))
    return total


def _crossing(intervals: Sequence[_Interval], start: int, bound_wh: Decimal) -> int | None:
    """When the session's energy first reaches ``bound_wh`` (linear within an interval)."""
    so_far = Decimal(0)
    for iv in intervals:
        if so_far + iv.wh >= bound_wh and iv.wh > 0:
            if iv.end == iv.start:
                return iv.start
            part = _CTX.divide(bound_wh - so_far, iv.wh)
            return iv.start + int((part * Decimal(iv.end - iv.start)).to_integral_value(ROUND_CEILING))
        so_far += iv.wh
    return None


def _holds(r: Restrictions, local: datetime, energy_kwh: Decimal, elapsed_s: Decimal,
           power_kw: Decimal | None) -> bool:
    t = local.time().replace(tzinfo=None)
    if r.start_time is not None and r.end_time is not None:
        inside = (r.start_time <= t < r.end_time) if r.start_time <= r.end_time else (
            t >= r.start_time or t < r.end_time)
        if not inside:
            return False
    elif (r.start_time is not None and t < r.start_time) or (r.end_time is not None and t >= r.end_time):
        return False
    d = local.date()
    if (r.start_date is not None and d < r.start_date) or (r.end_date is not None and d >= r.end_date):
        return False
    if r.day_of_week and WEEKDAYS[local.weekday()] not in r.day_of_week:
        return False
    if not _within(energy_kwh, r.min_kwh, r.max_kwh):
        return False
    if not _within(elapsed_s, r.min_duration_s, r.max_duration_s):
        return False
    if r.min_power_kw is not None or r.max_power_kw is not None:
        p = power_kw or Decimal(0)
        if not _within(p, r.min_power_kw, r.max_power_kw):
            return False
    return True


def _within(value: Decimal, low: Decimal | int | None, high: Decimal | int | None) -> bool:
    """``low <= value < high``, each bound only when given."""
    return (low is None or value >= low) and (high is None or value < high)


def _first(
    elements: Sequence[TariffElement], dim: Dimension, ok: Iterable[bool]
) -> tuple[int, PriceComponent] | None:
    for i, (element, holds) in enumerate(zip(elements, ok, strict=True)):
        if holds:
            for c in element.components:
                if c.type is dim:
                    return i, c
    return None


def _clock_breaks(tariff: Tariff, zone: ZoneInfo, start: int, stop: int) -> set[int]:
    """Where the local clock may change which element holds, in UTC microseconds: local midnights
    and restriction clock times (both instants of a time the autumn change repeats) and the
    zone's own offset changes (a spring change skips clock times: the jump itself is the cut)."""
    times = {time(0)} | {t for e in tariff.elements for t in e.restrictions.clock_times}
    day = _dt(start).astimezone(zone).date() - timedelta(days=1)
    last = _dt(stop).astimezone(zone).date() + timedelta(days=1)
    out = set()
    while day <= last:
        for t in times:
            for fold in (0, 1):
                at = _us(datetime.combine(day, t, tzinfo=zone).replace(fold=fold))
                if start < at < stop:
                    out.add(at)
        day += timedelta(days=1)
    out |= _offset_changes(zone, start, stop)
    return out


def _offset_changes(zone: ZoneInfo, start: int, stop: int) -> set[int]:
    """The instants in (start, stop) where ``zone``'s UTC offset changes (to the second)."""
    hour = 3_600_000_000
    out: set[int] = set()
    at = start - start % hour
    before = _dt(at).astimezone(zone).utcoffset()
    while at < stop:
        nxt = at + hour
        after = _dt(nxt).astimezone(zone).utcoffset()
        if after != before:
            lo, hi = at, nxt  # offset(lo) == before, offset(hi) == after
            while hi - lo > 1_000_000:
                mid = (lo + hi) // 2
                if _dt(mid).astimezone(zone).utcoffset() == before:
                    lo = mid
                else:
                    hi = mid
            if start < hi < stop:
                out.add(hi - hi % 1_000_000)
        at, before = nxt, after
    return out


def decimal_text(value: Decimal, places: int = 6) -> str:
    """``value`` rounded half up to ``places`` decimals, without trailing zeros or exponent."""
    rounded = value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP).normalize()
    return f"{rounded:f}"


def minor_unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-_MINOR_UNITS.get(currency, 2))


def price_session(tariff: Tariff, usage: SessionUsage, zone: ZoneInfo | None = None) -> Cost:
    """The cost of ``usage`` under ``tariff``; local restrictions read in ``zone`` (default UTC)."""
    zone = zone or ZoneInfo("UTC")
    start, stop = _us(usage.started_at), _us(usage.stopped_at)
    if stop < start:
        raise ValueError("the session stops before it starts")
    flags: list[str] = []
    intervals = _intervals(usage, start, stop, flags)
    if usage.charging_ended_at is not None:
        charge_end = min(max(_us(usage.charging_ended_at), start), stop)
    else:
        rising = [iv.end for iv in intervals if iv.wh > 0]
        charge_end = min(max(max(rising, default=start), start), stop)
    grace_end = min(charge_end + tariff.idle_grace_s * 1_000_000, stop)

    breaks = {start, stop, charge_end, grace_end} | _clock_breaks(tariff, zone, start, stop)
    breaks |= {iv.start for iv in intervals} | {iv.end for iv in intervals}
    for e in tariff.elements:
        r = e.restrictions
        for s in (r.min_duration_s, r.max_duration_s):
            if s is not None:
                breaks.add(start + s * 1_000_000)
        for kwh in (r.min_kwh, r.max_kwh):
            if kwh is not None and kwh > 0:
                at = _crossing(intervals, start, kwh * _KWH)
                if at is not None:
                    breaks.add(at)
    points = sorted(b for b in breaks if start <= b <= stop)

    used: dict[tuple[Dimension, int], _Use] = {}  # quantity in Wh, s or sessions
    last_of: dict[Dimension, tuple[int, PriceComponent]] = {}
    energy_so_far = Decimal(0)
    charging_us = idle_us = billed_idle_us = 0

    def add(dim: Dimension, found: tuple[int, PriceComponent] | None, qty: Decimal) -> None:
        if found is None or qty <= 0:
            return
        i, comp = found
        used.setdefault((dim, i), _Use(comp)).quantity += qty
        last_of[dim] = (i, comp)

    elements = tariff.elements
    local_start = _dt(start).astimezone(zone)
    at_start = [_holds(e.restrictions, local_start, Decimal(0), Decimal(0), None) for e in elements]
    flat = _first(elements, Dimension.FLAT, at_start)
    if flat is not None:
        add(Dimension.FLAT, flat, Decimal(1))

    segments = list(itertools.pairwise(points)) or [(start, stop)]
    for n, (a, b) in enumerate(segments):
        wh = _energy_between(intervals, a, b, last=n == len(segments) - 1)
        seconds = Decimal(b - a) / _US
        power_kw = _CTX.divide(wh * _HOUR_S, seconds * _KWH) if seconds > 0 else None
        local, elapsed_s = _dt(a).astimezone(zone), Decimal(a - start) / _US
        ok = [_holds(e.restrictions, local, energy_so_far / _KWH, elapsed_s, power_kw) for e in elements]
        add(Dimension.ENERGY, _first(elements, Dimension.ENERGY, ok), wh)
        if a < charge_end:
            charging_us += b - a
            add(Dimension.TIME, _first(elements, Dimension.TIME, ok), seconds)
        else:
            idle_us += b - a
            if a >= grace_end:
                billed_idle_us += b - a
                add(Dimension.PARKING_TIME, _first(elements, Dimension.PARKING_TIME, ok), seconds)
        energy_so_far += wh

    totals: dict[Dimension, Decimal] = {}
    for (dim, _), use in used.items():
        totals[dim] = totals.get(dim, Decimal(0)) + use.quantity
    lines: list[CostLine] = []
    for (dim, i), use in used.items():
        qty, comp = use.quantity, use.component
        if dim is not Dimension.FLAT and last_of.get(dim) == (i, comp):  # whole steps, at the last price
            step = Decimal(comp.step_size)
            qty += (totals[dim] / step).to_integral_value(ROUND_CEILING) * step - totals[dim]
        unit_qty = {Dimension.ENERGY: qty / _KWH, Dimension.FLAT: qty}.get(dim, qty / _HOUR_S)
        vat = tariff.vat_percent if comp.vat is None else comp.vat
        amount = _CTX.multiply(unit_qty, comp.price)
        lines.append(CostLine(dim, i, _CTX.plus(unit_qty), comp.price, amount, vat))

    subtotal = sum((ln.amount for ln in lines), Decimal(0))
    adjust = Decimal(0)
    if tariff.min_price is not None and subtotal < tariff.min_price:
        adjust, flag = tariff.min_price - subtotal, "min_price"
    elif tariff.max_price is not None and subtotal > tariff.max_price:
        adjust, flag = tariff.max_price - subtotal, "max_price"
    if adjust:
        flags.append(flag)
        lines.append(CostLine(Dimension.FLAT, -1, Decimal(1), adjust, adjust, tariff.vat_percent))
    unit = minor_unit(tariff.currency)
    excl = sum((ln.amount for ln in lines), Decimal(0)).quantize(unit, ROUND_HALF_UP)
    vat_exact = sum((ln.amount * ln.vat_percent / 100 for ln in lines), Decimal(0))
    vat = vat_exact.quantize(unit, ROUND_HALF_UP)
    return Cost(
        tariff.currency, tariff.tariff_id, tariff.version, tuple(lines),
        energy_so_far.quantize(Decimal("0.001"), ROUND_HALF_UP),
        Decimal(charging_us) / _US, Decimal(idle_us) / _US, Decimal(billed_idle_us) / _US,
        excl, vat, excl + vat, tuple(dict.fromkeys(flags)),
    )
