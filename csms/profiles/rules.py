"""Operator charging profiles in domain terms, and the rules a profile must follow (pure, no I/O).

A profile is checked here before anything is sent: ids, purposes per OCPP version, placement
(station-wide caps on EVSE 0, transaction profiles on an EVSE), kinds, units and the schedule
(periods ascending from 0, limits >= 0). ``ProfileInvalid`` names the field and the reason.
The balancer installs its own profiles under reserved ids (``BALANCER_IDS``): a profile's
``source`` says whose it is, and the operator may not take those ids.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ocppj.versions import OcppVersion

MAX_ID = 2**31 - 1  # OCPP integers are 32-bit
MAX_PERIODS = 1024  # 2.0.1 chargingSchedulePeriod maxItems
MAX_STACK_LEVEL = 1000
BALANCER_IDS = range(800_000, 1_000_000)  # TxDefault 800_000 + EVSE, Tx 900_000 + EVSE (csms.balancer)


class ProfileInvalid(ValueError):
    """A profile or request that breaks a rule; the text names the field."""


class Purpose(enum.StrEnum):
    """chargingProfilePurpose, as each version spells it."""

    CHARGE_POINT_MAX = "ChargePointMaxProfile"  # 1.6
    CHARGING_STATION_MAX = "ChargingStationMaxProfile"  # 2.0.1
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


PURPOSES: dict[OcppVersion, frozenset[Purpose]] = {
    OcppVersion.V16: frozenset({Purpose.CHARGE_POINT_MAX, Purpose.TX_DEFAULT, Purpose.TX}),
    OcppVersion.V201: frozenset({Purpose.CHARGING_STATION_MAX, Purpose.TX_DEFAULT, Purpose.TX}),
}
_STATION_MAX = frozenset({Purpose.CHARGE_POINT_MAX, Purpose.CHARGING_STATION_MAX})
# the balancer's places on an EVSE it drives (csms.balancer): its fail-safe TxDefaultProfile at
# stack level 0 and its live TxProfile at stack level 1
BALANCER_STACKS = frozenset({(Purpose.TX_DEFAULT, 0), (Purpose.TX, 1)})


class Kind(enum.StrEnum):
    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class Recurrency(enum.StrEnum):
    DAILY = "Daily"
    WEEKLY = "Weekly"


class RateUnit(enum.StrEnum):
    A = "A"
    W = "W"


class Source(enum.StrEnum):
    """Who installed a profile: the operator (by hand, or the console's limit) or the balancer."""

    OPERATOR = "operator"
    BALANCER = "balancer"


def source_of(profile_id: int) -> Source:
    return Source.BALANCER if profile_id in BALANCER_IDS else Source.OPERATOR


@dataclass(frozen=True, slots=True)
class Period:
    """From ``start_s`` seconds after the schedule's start: ``limit`` in its unit on ``number_phases``."""

    start_s: int
    limit: float
    number_phases: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """A full charging profile for one EVSE (0: the whole station)."""

    profile_id: int
    evse_id: int
    purpose: Purpose
    stack_level: int
    kind: Kind
    unit: RateUnit
    periods: tuple[Period, ...]
    recurrency: Recurrency | None = None
    start_schedule: datetime | None = None
    duration_s: int | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    transaction_id: str | None = None
    min_rate: float | None = None

    @property
    def source(self) -> Source:
        return source_of(self.profile_id)


@dataclass(frozen=True, slots=True)
class Answer:
    """A station's answer to a command: its status word and, when given, why."""

    status: str
    detail: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == "Accepted"


@dataclass(frozen=True, slots=True)
class CompositeSchedule:
    """GetCompositeSchedule's answer in one shape for both versions (schedule fields None when
    the station gave none)."""

    answer: Answer
    evse_id: int
    start: datetime | None = None
    duration_s: int | None = None
    unit: RateUnit | None = None
    periods: tuple[Period, ...] = field(default=())


def check_id(profile_id: int) -> None:
    """A profile id the operator may use: 1..2**31-1, outside the balancer's ids."""
    if not 1 <= profile_id <= MAX_ID:
        raise ProfileInvalid(f"profile_id: must be 1..{MAX_ID}")
    if profile_id in BALANCER_IDS:
        raise ProfileInvalid(
            f"profile_id: {BALANCER_IDS.start}..{BALANCER_IDS.stop - 1} are the load balancer's own ids"
        )


def check_balancer_place(profile: Profile, balanced: bool) -> None:
    """``balanced``: the load balancer drives the profile's EVSE (EVSE 0: any EVSE of the station).
    A station keeps one profile per purpose and stack level (1.6 replaces the older), so the
    operator's would replace the balancer's and each would overwrite the other."""
    if balanced and (profile.purpose, profile.stack_level) in BALANCER_STACKS:
        where = "the station" if profile.evse_id == 0 else f"EVSE {profile.evse_id}"
        raise ProfileInvalid(
            f"stack_level: {profile.purpose.value} at stack level {profile.stack_level} is the load "
            f"balancer's on {where}; use another stack level"
        )


def check_periods(periods: tuple[Period, ...]) -> None:
    if not periods:
        raise ProfileInvalid("periods: at least one period is needed")
    if len(periods) > MAX_PERIODS:
        raise ProfileInvalid(f"periods: at most {MAX_PERIODS}")
    if periods[0].start_s != 0:
        raise ProfileInvalid("periods[0].start_s: the first period must start at 0")
    for i, p in enumerate(periods):
        if i and p.start_s <= periods[i - 1].start_s:
            raise ProfileInvalid(f"periods[{i}].start_s: must be greater than the previous period's")
        if not 0 <= p.limit < math.inf:  # NaN and infinity too
            raise ProfileInvalid(f"periods[{i}].limit: must be a finite number >= 0")
        if p.number_phases is not None and not 1 <= p.number_phases <= 3:
            raise ProfileInvalid(f"periods[{i}].number_phases: must be 1, 2 or 3")


def check_profile(profile: Profile, version: OcppVersion) -> None:
    """Raise ``ProfileInvalid`` unless ``profile`` may be sent to a station of ``version``."""
    check_id(profile.profile_id)
    if profile.evse_id < 0:
        raise ProfileInvalid("evse_id: must be >= 0 (0: the whole station)")
    if profile.purpose not in PURPOSES[version]:
        allowed = ", ".join(sorted(PURPOSES[version]))
        raise ProfileInvalid(f"purpose: {profile.purpose} is not an OCPP {version.value} purpose ({allowed})")
    if profile.purpose in _STATION_MAX and profile.evse_id != 0:
        raise ProfileInvalid(f"evse_id: a {profile.purpose} applies to the whole station (evse_id 0)")
    if profile.purpose is Purpose.TX:
        if profile.evse_id == 0:
            raise ProfileInvalid("evse_id: a TxProfile belongs to one EVSE (evse_id >= 1)")
        if version is OcppVersion.V201 and not profile.transaction_id:
            raise ProfileInvalid("transaction_id: a 2.0.1 TxProfile names its transaction")
    elif profile.transaction_id is not None:
        raise ProfileInvalid("transaction_id: only a TxProfile names a transaction")
    if not 0 <= profile.stack_level <= MAX_STACK_LEVEL:
        raise ProfileInvalid(f"stack_level: must be 0..{MAX_STACK_LEVEL}")
    if profile.kind is Kind.RECURRING:
        if profile.recurrency is None:
            raise ProfileInvalid("recurrency: a Recurring profile needs Daily or Weekly")
        if profile.start_schedule is None:
            raise ProfileInvalid("start_schedule: a Recurring profile needs the start of its recurrence")
    elif profile.recurrency is not None:
        raise ProfileInvalid("recurrency: only a Recurring profile recurs")
    if profile.kind is Kind.RELATIVE and profile.start_schedule is not None:
        raise ProfileInvalid("start_schedule: a Relative profile starts with its transaction, not at a time")
    if profile.duration_s is not None and not 1 <= profile.duration_s <= MAX_ID:
        raise ProfileInvalid("duration_s: must be >= 1")
    if profile.kind is Kind.RECURRING and profile.duration_s is not None:
        cycle = 86_400 if profile.recurrency is Recurrency.DAILY else 7 * 86_400
        if profile.duration_s > cycle:
            raise ProfileInvalid(f"duration_s: a {profile.recurrency} recurrence lasts at most {cycle} s")
    if profile.valid_from and profile.valid_to and profile.valid_to <= profile.valid_from:
        raise ProfileInvalid("valid_to: must be after valid_from")
    if profile.min_rate is not None and not 0 <= profile.min_rate < math.inf:
        raise ProfileInvalid("min_rate: must be a finite number >= 0")
    check_periods(profile.periods)


def check_composite_request(evse_id: int, duration_s: int) -> None:
    if evse_id < 0:
        raise ProfileInvalid("evse_id: must be >= 0 (0: the whole station)")
    if not 1 <= duration_s <= MAX_ID:
        raise ProfileInvalid("duration_s: must be >= 1")


@dataclass(frozen=True, slots=True)
class StoredProfile:
    """A profile the operator set, with the station's answer and when it was given."""

    station_id: str
    profile: Profile
    answer: Answer
    set_at: datetime


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def profile_fields(profile: Profile) -> dict[str, object]:
    """The profile as plain JSON-ready fields (the API's names; times in ISO 8601)."""
    return {
        "profile_id": profile.profile_id, "evse_id": profile.evse_id, "purpose": profile.purpose.value,
        "stack_level": profile.stack_level, "kind": profile.kind.value, "unit": profile.unit.value,
        "periods": [{"start_s": p.start_s, "limit": p.limit, "number_phases": p.number_phases}
                    for p in profile.periods],
        "recurrency": None if profile.recurrency is None else profile.recurrency.value,
        "start_schedule": None if profile.start_schedule is None else profile.start_schedule.isoformat(),
        "duration_s": profile.duration_s,
        "valid_from": None if profile.valid_from is None else profile.valid_from.isoformat(),
        "valid_to": None if profile.valid_to is None else profile.valid_to.isoformat(),
        "transaction_id": profile.transaction_id, "min_rate": profile.min_rate,
    }


def profile_of_fields(f: dict[str, Any]) -> Profile:
    """The inverse of ``profile_fields``."""
    periods = f["periods"]
    assert isinstance(periods, list)
    recurrency = f.get("recurrency")
    return Profile(
        profile_id=int(str(f["profile_id"])), evse_id=int(str(f["evse_id"])), purpose=Purpose(f["purpose"]),
        stack_level=int(str(f["stack_level"])), kind=Kind(f["kind"]), unit=RateUnit(f["unit"]),
        periods=tuple(Period(int(p["start_s"]), float(p["limit"]), p.get("number_phases")) for p in periods),
        recurrency=None if recurrency is None else Recurrency(recurrency),
        start_schedule=_time(f.get("start_schedule")), valid_from=_time(f.get("valid_from")),
        valid_to=_time(f.get("valid_to")),
        duration_s=None if f.get("duration_s") is None else int(str(f["duration_s"])),
        transaction_id=None if f.get("transaction_id") is None else str(f["transaction_id"]),
        min_rate=None if f.get("min_rate") is None else float(str(f["min_rate"])),
    )
