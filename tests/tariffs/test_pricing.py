"""Session prices under tariffs, decimal-exact, on the edges: period boundaries, midnight, a DST
change, a missing meter stop, a meter reset, whole steps, min/max price."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from csms.tariffs.model import DayOfWeek, Dimension, PriceComponent, Restrictions, Tariff, TariffElement
from csms.tariffs.pricing import MeterReading, SessionUsage, price_session

BERLIN = ZoneInfo("Europe/Berlin")


def at(hh: int, mm: int = 0, day: int = 7) -> datetime:
    return datetime(2026, 12, day, hh, mm, tzinfo=UTC)


def usage(*points: tuple[datetime, float], stop: datetime | None = None, **kw: object) -> SessionUsage:
    readings = tuple(MeterReading(t, D(str(wh))) for t, wh in points)
    return SessionUsage(points[0][0], stop or points[-1][0], readings, **kw)  # type: ignore[arg-type]


def comp(kind: Dimension, price: str, step: int = 1) -> PriceComponent:
    return PriceComponent(kind, D(price), step)


def tariff(*elements: TariffElement, **kw: object) -> Tariff:
    return Tariff("T1", "EUR", elements, **kw)  # type: ignore[arg-type]


def line(cost: object, dim: Dimension, element: int = 0) -> D:
    return sum((ln.amount for ln in cost.lines if ln.dimension is dim and ln.element == element), D(0))  # type: ignore[attr-defined]


REFERENCE = tariff(
    TariffElement(
        (
            comp(Dimension.ENERGY, "0.40"),
            comp(Dimension.FLAT, "1.00"),
            comp(Dimension.PARKING_TIME, "6.00", 60),
        )
    ),  # 0.10 a minute, billed per started minute
    vat_percent=D(19),
    idle_grace_s=300,
)


def test_energy_session_fee_and_idle_fee_after_the_grace_with_vat() -> None:
    # 10 kWh over an hour, then 20 minutes plugged in without charging: 15 billed idle minutes
    cost = price_session(REFERENCE, usage((at(10), 0), (at(10, 30), 5000), (at(11), 10000), stop=at(11, 20)))
    assert line(cost, Dimension.ENERGY) == D("4.000") and line(cost, Dimension.FLAT) == D("1.00")
    assert line(cost, Dimension.PARKING_TIME) == D("1.50")
    assert (cost.excl_vat, cost.vat, cost.incl_vat) == (D("6.50"), D("1.24"), D("7.74"))  # 1.235 rounds up
    assert (cost.charging_s, cost.idle_s, cost.billed_idle_s) == (D(3600), D(1200), D(900))
    assert cost.energy_wh == D(10000) and cost.flags == ()


def test_idle_within_the_grace_costs_nothing_and_parking_is_billed_per_started_minute() -> None:
    short = price_session(REFERENCE, usage((at(10), 0), (at(11), 10000), stop=at(11, 5)))
    assert line(short, Dimension.PARKING_TIME) == 0 and short.excl_vat == D("5.00")
    late = at(11, 5) + timedelta(seconds=61)
    odd = price_session(REFERENCE, usage((at(10), 0), (at(11), 10000), stop=late))
    assert line(odd, Dimension.PARKING_TIME) == D("0.20")  # 61 s -> 2 started minutes


def test_a_price_period_boundary_splits_the_energy_at_the_local_clock_time() -> None:
    evening = Restrictions(start_time=time(18), end_time=time(22))
    peak = TariffElement((comp(Dimension.ENERGY, "0.50"),), evening)
    base = TariffElement((comp(Dimension.ENERGY, "0.30"),))
    # 17:30-18:30 Berlin (UTC+1 in December) at a steady 7.2 kW: half before the peak, half in it
    cost = price_session(tariff(peak, base), usage((at(16, 30), 0), (at(17, 30), 7200)), BERLIN)
    assert (line(cost, Dimension.ENERGY, 1), line(cost, Dimension.ENERGY, 0)) == (D("1.08"), D("1.80"))
    assert cost.excl_vat == D("2.88")


def test_midnight_moves_a_session_into_the_weekend_price() -> None:
    weekend = TariffElement(
        (comp(Dimension.ENERGY, "0.20"),),
        Restrictions(day_of_week=frozenset({DayOfWeek.SATURDAY, DayOfWeek.SUNDAY})),
    )
    weekday = TariffElement((comp(Dimension.ENERGY, "0.40"),))
    # Friday 11 December 2026, 23:30 to Saturday 00:30 Berlin time, 2 kWh evenly
    cost = price_session(tariff(weekend, weekday), usage((at(22, 30, 11), 0), (at(23, 30, 11), 2000)), BERLIN)
    assert (line(cost, Dimension.ENERGY, 1), line(cost, Dimension.ENERGY, 0)) == (D("0.40"), D("0.20"))


def test_the_autumn_clock_change_bills_real_hours_and_meets_the_local_period_once() -> None:
    night = TariffElement((comp(Dimension.TIME, "2.00"),), Restrictions(start_time=time(3), end_time=time(6)))
    day = TariffElement((comp(Dimension.TIME, "1.00"),))
    # 25 October 2026: 03:00 CEST becomes 02:00 CET. 00:30-02:30 UTC is two real hours,
    # 02:30 CEST .. 03:30 CET local; the night price starts at 03:00 CET = 02:00 UTC.
    start = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    cost = price_session(tariff(night, day), usage((start, 0), (start + timedelta(hours=2), 4000)), BERLIN)
    assert cost.charging_s == D(7200)
    assert (line(cost, Dimension.TIME, 1), line(cost, Dimension.TIME, 0)) == (D("1.50"), D("1.00"))


def test_a_missing_meter_stop_prices_time_and_says_the_energy_is_unknown() -> None:
    t = tariff(TariffElement((comp(Dimension.ENERGY, "0.40"), comp(Dimension.FLAT, "1.00"))))
    cost = price_session(t, usage((at(10), 1000), stop=at(11)))
    assert cost.flags == ("no_meter_data",) and cost.energy_wh == 0 and cost.excl_vat == D("1.00")


def test_a_meter_reset_counts_what_the_register_shows_since() -> None:
    t = tariff(TariffElement((comp(Dimension.ENERGY, "0.40"),)))
    cost = price_session(t, usage((at(10), 0), (at(10, 30), 5000), (at(11), 1000)))
    assert cost.energy_wh == D(6000) and "meter_reset" in cost.flags and cost.excl_vat == D("2.40")


def test_time_is_billed_in_whole_steps_at_the_last_price() -> None:
    t = tariff(TariffElement((comp(Dimension.TIME, "4.00", 900),)))  # per quarter hour started
    cost = price_session(t, usage((at(10), 0), (at(10, 20), 3000)))
    assert cost.charging_s == D(1200) and cost.excl_vat == D("2.00")  # 30 min billed


def test_energy_bands_price_the_first_kwh_differently() -> None:
    first = TariffElement((comp(Dimension.ENERGY, "0.50"),), Restrictions(max_kwh=D(10)))
    rest = TariffElement((comp(Dimension.ENERGY, "0.30"),))
    cost = price_session(tariff(first, rest), usage((at(10), 0), (at(12), 20000)))
    assert (line(cost, Dimension.ENERGY, 0), line(cost, Dimension.ENERGY, 1)) == (D("5.00"), D("3.00"))


def test_min_and_max_price_bound_the_total_excl_vat() -> None:
    t = tariff(
        TariffElement((comp(Dimension.ENERGY, "0.40"),)),
        min_price=D("2.00"),
        max_price=D("3.00"),
        vat_percent=D(19),
    )
    small = price_session(t, usage((at(10), 0), (at(10, 5), 500)))
    assert (small.excl_vat, small.vat, small.flags) == (D("2.00"), D("0.38"), ("min_price",))
    big = price_session(t, usage((at(10), 0), (at(12), 20000)))
    assert (big.excl_vat, big.flags) == (D("3.00"), ("max_price",))


def test_prices_stay_exact_where_floats_would_drift() -> None:
    t = tariff(TariffElement((comp(Dimension.ENERGY, "0.1"),)))
    cost = price_session(t, usage((at(10), 0), (at(10, 10), 100), (at(10, 20), 200), (at(10, 30), 300)))
    assert line(cost, Dimension.ENERGY) == D("0.03")  # 0.1 + 0.1 + 0.1 kWh at 0.1, not 0.030000000000000006


@pytest.mark.parametrize(
    "bad",
    [
        {"currency": "eur"},
        {"vat_percent": D(120)},
        {"min_price": D(5), "max_price": D(1)},
        {"idle_grace_s": -1},
    ],
)
def test_invalid_tariffs_are_refused(bad: dict[str, object]) -> None:
    args: dict[str, object] = {
        "tariff_id": "T",
        "currency": "EUR",
        "elements": (TariffElement((comp(Dimension.FLAT, "1"),)),),
        **bad,
    }
    with pytest.raises(ValueError):
        Tariff(**args)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PriceComponent(Dimension.ENERGY, D("-0.1"))


def test_the_most_specific_assignment_prices_the_session() -> None:
    from csms.tariffs.assign import pick_tariff

    table = [
        ("default", "", "D"),
        ("site", "harbour", "S"),
        ("group", "north", "G1"),
        ("group", "fast", "G0"),
        ("tag_group", "fleet-a", "T"),
        ("station", "CP1", "X"),
    ]
    everything = {"groups": ("north",), "site_id": "harbour", "tag_group": "fleet-a"}
    assert pick_tariff(table, station_id="CP1", **everything) == "X"  # type: ignore[arg-type]
    assert pick_tariff(table, station_id="CP2", **everything) == "T"  # type: ignore[arg-type]
    assert pick_tariff(table, station_id="CP2", groups=("north", "fast"), site_id="harbour") == "G0"
    assert pick_tariff(table, station_id="CP2", site_id="harbour") == "S"
    assert pick_tariff(table, station_id="CP2") == "D"
    assert pick_tariff([], station_id="CP2") is None


def test_a_reading_a_little_below_the_last_is_no_energy_not_a_reset() -> None:
    t = tariff(TariffElement((comp(Dimension.ENERGY, "0.40"),)))
    # 131.069 kWh read as 131068.999.. Wh (a float), then the stop register 10 kWh later
    cost = price_session(t, usage((at(10), 131069), (at(10, 1), D("131068.999")), (at(11), 141069)))
    assert cost.energy_wh == D(10000) and cost.flags == ("meter_backwards",) and cost.excl_vat == D("4.00")


def test_the_spring_clock_change_ends_a_night_price_at_the_jump() -> None:
    night = TariffElement(
        (comp(Dimension.TIME, "2.00"),), Restrictions(start_time=time(22), end_time=time(2, 30))
    )
    day = TariffElement((comp(Dimension.TIME, "1.00"),))
    # 29 March 2026: 02:00 CET becomes 03:00 CEST (01:00 UTC). 00:00-04:00 local is three real
    # hours; 02:00-02:30 never happens, so the night price ends at the jump: 2 h night, 1 h day.
    start = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    cost = price_session(tariff(night, day), usage((start, 0), (start + timedelta(hours=3), 3000)), BERLIN)
    assert (line(cost, Dimension.TIME, 0), line(cost, Dimension.TIME, 1)) == (D("4.00"), D("1.00"))


def test_the_autumn_clock_change_meets_a_repeated_local_time_twice() -> None:
    early = TariffElement(
        (comp(Dimension.TIME, "2.00"),), Restrictions(start_time=time(2, 30), end_time=time(6))
    )
    rest = TariffElement((comp(Dimension.TIME, "1.00"),))
    # 25 October 2026, five real hours from local midnight (22:00 UTC): 02:30-03:00 CEST, then
    # 02:30-04:00 CET after the clocks went back: 2 h at the early price, 3 h at the other
    start = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    cost = price_session(tariff(early, rest), usage((start, 0), (start + timedelta(hours=5), 5000)), BERLIN)
    assert (line(cost, Dimension.TIME, 0), line(cost, Dimension.TIME, 1)) == (D("4.00"), D("3.00"))


def test_readings_beyond_the_session_count_only_their_share() -> None:
    t = tariff(TariffElement((comp(Dimension.ENERGY, "1.00"),)))
    # a reading interval 09:00-11:00 of 2 kWh; the session is 10:00-11:00: half of it
    session = SessionUsage(at(10), at(11), (MeterReading(at(9), D(0)), MeterReading(at(11), D(2000))))
    cost = price_session(t, session)
    assert cost.energy_wh == D(1000) and cost.excl_vat == D("1.00")


@pytest.mark.parametrize(
    "restrictions",
    [
        {"min_kwh": D(-1)},
        {"max_power_kw": D(-5)},
        {"min_duration_s": -1},
        {"start_time": time(8), "end_time": time(8)},
    ],
)
def test_restrictions_that_cannot_hold_are_refused(restrictions: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Restrictions(**restrictions)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        tariff(TariffElement((comp(Dimension.FLAT, "1"),)), max_price=D("-5"))
    with pytest.raises(ValueError):
        Tariff("has space", "EUR", (TariffElement((comp(Dimension.FLAT, "1"),)),))
