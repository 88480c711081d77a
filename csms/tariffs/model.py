"""Tariffs as data, in the shape of an OCPI 2.2.1 Tariff: elements of price components, each
element valid under restrictions (time of day, date, weekday, energy, duration, power).

Prices are ``Decimal`` and excl. VAT, as in OCPI: energy per kWh, time and parking time per hour,
flat per session. ``idle_grace_s`` is the one field OCPI has no place for: parking time is
billed only from that long after charging ended (OCPI tariffs bill parking from its start;
``alt_text`` tells drivers of the grace).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal

TARIFF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,35}$")


class Dimension(enum.StrEnum):
    """What a price component charges for (OCPI TariffDimensionType)."""

    ENERGY = "ENERGY"  # per kWh; step_size in Wh
    FLAT = "FLAT"  # per session
    TIME = "TIME"  # per hour charging; step_size in seconds
    PARKING_TIME = "PARKING_TIME"  # per hour not charging (after idle_grace_s); step_size in seconds


class DayOfWeek(enum.StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


WEEKDAYS = tuple(DayOfWeek)  # index = datetime.weekday()


@dataclass(frozen=True, slots=True)
class PriceComponent:
    type: Dimension
    price: Decimal  # excl. VAT
    step_size: int = 1  # billed in whole steps (Wh or s); FLAT ignores it
    vat: Decimal | None = None  # percent; None: the tariff's vat_percent

    def __post_init__(self) -> None:
        if self.price < 0:
            raise ValueError("a price cannot be negative")
        if self.step_size < 1:
            raise ValueError("step_size must be at least 1")
        if self.vat is not None and not Decimal(0) <= self.vat <= Decimal(100):
            raise ValueError("vat must be a percentage from 0 to 100")


@dataclass(frozen=True, slots=True)
class Restrictions:
    """When an element applies; every given field must hold (OCPI TariffRestrictions).

    Times and dates are local to the station's site. ``end_time`` before ``start_time`` spans
    midnight. Energy (kWh) and duration (s) are the session's so far; power (kW) the
    average over the stretch being priced.
    """

    start_time: time | None = None
    end_time: time | None = None
    start_date: date | None = None
    end_date: date | None = None  # exclusive
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None  # exclusive
    min_duration_s: int | None = None
    max_duration_s: int | None = None  # exclusive
    min_power_kw: Decimal | None = None
    max_power_kw: Decimal | None = None  # exclusive
    day_of_week: frozenset[DayOfWeek] = frozenset()

    def __post_init__(self) -> None:
        for name in ("min_kwh", "max_kwh", "min_power_kw", "max_power_kw"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} cannot be negative")
        for name in ("min_duration_s", "max_duration_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} cannot be negative")
        if self.start_time is not None and self.start_time == self.end_time:
            raise ValueError("start_time and end_time are equal: the element would never apply")

    @property
    def clock_times(self) -> tuple[time, ...]:
        """The local times of day where this restriction may start or stop holding."""
        return tuple(t for t in (self.start_time, self.end_time) if t is not None)


@dataclass(frozen=True, slots=True)
class TariffElement:
    components: tuple[PriceComponent, ...]
    restrictions: Restrictions = field(default_factory=Restrictions)

    def __post_init__(self) -> None:
        if not self.components:
            raise ValueError("a tariff element needs at least one price component")


@dataclass(frozen=True, slots=True)
class Tariff:
    """One version of a tariff. A session is priced with the version valid when it started."""

    tariff_id: str
    currency: str  # ISO 4217
    elements: tuple[TariffElement, ...]
    vat_percent: Decimal = Decimal(0)
    min_price: Decimal | None = None  # excl. VAT
    max_price: Decimal | None = None  # excl. VAT
    idle_grace_s: int = 0
    version: int = 1
    alt_text: tuple[tuple[str, str], ...] = ()  # (language, text) for drivers and displays
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    def __post_init__(self) -> None:
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError("currency must be an ISO 4217 code such as EUR")
        if not Decimal(0) <= self.vat_percent <= Decimal(100):
            raise ValueError("vat_percent must be from 0 to 100")
        if any(p is not None and p < 0 for p in (self.min_price, self.max_price)):
            raise ValueError("min_price and max_price cannot be negative")
        if not TARIFF_ID.match(self.tariff_id):
            raise ValueError("tariff_id must be 1-36 letters, digits or . _ - (starting alphanumeric)")
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError("min_price is above max_price")
        if self.idle_grace_s < 0:
            raise ValueError("idle_grace_s cannot be negative")
        if not self.elements:
            raise ValueError("a tariff needs at least one element")
