"""OCPP smart-charging profile stacking for OCPP 1.6 and 2.0.1, pure (no I/O, no clock).

A virtual charger keeps one :class:`ProfileSet` per station; EVSE (connector) 0 means the
whole station. Profile dicts are accepted exactly as they arrive in a SetChargingProfile
payload, in either version, with camelCase keys or with the snake_case keys the
``ocpp`` library hands to handlers.

How the effective limit of an EVSE is found at a moment ``now``:

1. Within a purpose, the valid profile (validFrom/validTo, and its schedule in effect at
   ``now``) with the highest stackLevel wins; on a tie the EVSE's own profile beats one
   installed on EVSE 0.
2. A TxProfile for the running transaction overrides the TxDefaultProfile.
3. That limit is capped by the station max profile (ChargePointMaxProfile /
   ChargingStationMaxProfile) and by ChargingStationExternalConstraints.

Limits are returned in amperes per phase; W limits are divided by ``phases * voltage_v``
(phases lowered to a period's numberPhases when it sets one).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from typing import Any

from ocppj.timestamps import as_utc, format_datetime, parse_datetime

DAY_S = 86_400
WEEK_S = 7 * DAY_S
_RECURRENCE_EPOCH = datetime(1970, 1, 5, tzinfo=UTC)  # a Monday, 00:00 UTC


class ProfileRejected(ValueError):
    """A profile or request the station answers with status Rejected."""


class Purpose(StrEnum):
    """chargingProfilePurpose; 1.6's ChargePointMaxProfile maps to STATION_MAX."""

    STATION_MAX = "ChargingStationMaxProfile"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"
    EXTERNAL = "ChargingStationExternalConstraints"


_PURPOSES: dict[str, Purpose] = {
    "ChargePointMaxProfile": Purpose.STATION_MAX,
    **{purpose.value: purpose for purpose in Purpose},
}
_CAPS = (Purpose.STATION_MAX, Purpose.EXTERNAL)


class Kind(StrEnum):
    """chargingProfileKind."""

    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class Recurrency(StrEnum):
    """recurrencyKind."""

    DAILY = "Daily"
    WEEKLY = "Weekly"


class RateUnit(StrEnum):
    """chargingRateUnit."""

    A = "A"
    W = "W"


@dataclass(frozen=True, slots=True)
class Period:
    """One chargingSchedulePeriod: ``limit`` in the schedule's unit from ``start_s`` on."""

    start_s: int
    limit: float
    number_phases: int | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A chargingSchedule; periods sorted by start, the first starting at 0."""

    rate_unit: RateUnit
    periods: tuple[Period, ...]
    start: datetime | None = None
    duration_s: int | None = None


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    """A parsed profile of either version; ``payload`` keeps the camelCase original."""

    profile_id: int
    stack_level: int
    purpose: Purpose
    kind: Kind
    schedule: Schedule
    recurrency: Recurrency | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    transaction_id: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def valid_at(self, when: datetime) -> bool:
        """Whether ``when`` lies in [validFrom, validTo)."""
        if self.valid_from is not None and when < self.valid_from:
            return False
        return self.valid_to is None or when < self.valid_to


@dataclass(frozen=True, slots=True)
class Limit:
    """An effective limit: amperes per phase (None: unlimited) on at most ``number_phases``."""

    current_a: float | None
    number_phases: int | None = None


UNLIMITED = Limit(None)


@dataclass(frozen=True, slots=True)
class ClearCriteria:
    """What a ClearChargingProfile request asks to clear (None fields match anything)."""

    profile_id: int | None = None
    evse_id: int | None = None
    purpose: Purpose | None = None
    stack_level: int | None = None


@dataclass(frozen=True, slots=True)
class CompositePeriod:
    """One period of a composite schedule, ``start_period_s`` after its start."""

    start_period_s: int
    limit: float
    number_phases: int | None = None

    def to_payload(self) -> dict[str, Any]:
        """The chargingSchedulePeriod dict (same keys in 1.6 and 2.0.1)."""
        payload: dict[str, Any] = {"startPeriod": self.start_period_s, "limit": self.limit}
        if self.number_phases is not None:
            payload["numberPhases"] = self.number_phases
        return payload


@dataclass(frozen=True, slots=True)
class CompositeSchedule:
    """The answer to GetCompositeSchedule, renderable for either version."""

    evse_id: int
    start: datetime
    duration_s: int
    unit: RateUnit
    periods: tuple[CompositePeriod, ...]

    def charging_schedule_v16(self) -> dict[str, Any]:
        """``chargingSchedule`` of a 1.6 GetCompositeSchedule.conf (also send
        ``status="Accepted"``, ``connectorId`` and ``scheduleStart``)."""
        return {
            "duration": self.duration_s,
            "startSchedule": format_datetime(self.start, timespec="seconds"),
            "chargingRateUnit": self.unit.value,
            "chargingSchedulePeriod": [period.to_payload() for period in self.periods],
        }

    def schedule_v201(self) -> dict[str, Any]:
        """``schedule`` (CompositeScheduleType) of a 2.0.1 GetCompositeScheduleResponse."""
        return {
            "evseId": self.evse_id,
            "duration": self.duration_s,
            "scheduleStart": format_datetime(self.start, timespec="seconds"),
            "chargingRateUnit": self.unit.value,
            "chargingSchedulePeriod": [period.to_payload() for period in self.periods],
        }


@dataclass(frozen=True, slots=True)
class _Query:
    """Who is asking: EVSE, running transaction and how to convert W to A."""

    evse_id: int
    transaction_id: str | None
    tx_start: datetime | None
    default_anchor: datetime
    phases: int
    voltage_v: float

    @property
    def anchor(self) -> datetime:
        """Start of a Relative (or unanchored Absolute) schedule."""
        return self.tx_start if self.tx_start is not None else self.default_anchor


class ProfileSet:
    """The charging profiles installed on one station, keyed by EVSE (0 = station-wide)."""

    __slots__ = ("_installed",)

    def __init__(self) -> None:
        self._installed: dict[int, tuple[int, ChargingProfile]] = {}

    def __len__(self) -> int:
        return len(self._installed)

    def profiles(self, evse_id: int | None = None) -> list[tuple[int, ChargingProfile]]:
        """Installed ``(evse_id, profile)`` pairs, optionally only those on ``evse_id``."""
        return [item for item in self._installed.values() if evse_id in (None, item[0])]

    def install(self, profile: ChargingProfile | Mapping[str, Any], evse_id: int) -> ChargingProfile:
        """Install a profile (dict or parsed) on ``evse_id``; raises ProfileRejected.

        Replaces a profile with the same id anywhere on the station, and one with the same
        stackLevel and purpose on the same EVSE (for TxProfile: and same transactionId).
        """
        parsed = profile if isinstance(profile, ChargingProfile) else parse_profile(profile)
        _check_placement(parsed, evse_id)
        for profile_id, (other_evse, other) in list(self._installed.items()):
            if profile_id == parsed.profile_id or (other_evse == evse_id and _same_slot(other, parsed)):
                del self._installed[profile_id]
        self._installed[parsed.profile_id] = (evse_id, parsed)
        return parsed

    def clear(
        self,
        *,
        profile_id: int | None = None,
        evse_id: int | None = None,
        purpose: Purpose | str | None = None,
        stack_level: int | None = None,
    ) -> bool:
        """Clear matching profiles; True if any matched (Accepted), else False (Unknown).

        A ``profile_id`` clears only that profile; otherwise every given criterion must
        match and no criteria clears everything.
        """
        wanted = _parse_purpose(purpose) if purpose is not None else None
        criteria = ClearCriteria(profile_id, evse_id, wanted, stack_level)
        matched = [pid for pid, item in self._installed.items() if _matches(criteria, *item)]
        for pid in matched:
            del self._installed[pid]
        return bool(matched)

    def clear_request(self, request: Mapping[str, Any]) -> bool:
        """Apply a ClearChargingProfile request payload of either version."""
        criteria = parse_clear_charging_profile(request)
        return self.clear(
            profile_id=criteria.profile_id,
            evse_id=criteria.evse_id,
            purpose=criteria.purpose,
            stack_level=criteria.stack_level,
        )

    def clear_transaction_profiles(self, evse_id: int) -> bool:
        """Drop the TxProfiles of ``evse_id``; call when its transaction ends."""
        return self.clear(evse_id=evse_id, purpose=Purpose.TX)

    def effective_limit(
        self,
        now: datetime,
        evse_id: int,
        transaction_id: str | int | None = None,
        tx_start: datetime | None = None,
        *,
        phases: int,
        voltage_v: float = 230.0,
    ) -> Limit:
        """The limit in effect on ``evse_id`` at ``now``, with the phase restriction."""
        moment = as_utc(now)
        query = _query(evse_id, transaction_id, tx_start, moment, phases, voltage_v)
        return self._evaluate(moment, query)

    def limit_at(
        self,
        now: datetime,
        evse_id: int,
        transaction_id: str | int | None = None,
        tx_start: datetime | None = None,
        *,
        phases: int,
        voltage_v: float = 230.0,
    ) -> float | None:
        """The current limit in A per phase on ``evse_id`` at ``now``; None = unlimited.

        ``phases`` should be the phases in use (``ev.phases_used``); 1 on DC with
        ``voltage_v`` the DC voltage. Without a transaction, Relative schedules start now.
        """
        limit = self.effective_limit(
            now, evse_id, transaction_id, tx_start, phases=phases, voltage_v=voltage_v
        )
        return limit.current_a

    def composite_schedule(
        self,
        start: datetime,
        duration_s: int,
        evse_id: int,
        transaction_id: str | int | None = None,
        tx_start: datetime | None = None,
        *,
        max_current_a: float,
        phases: int,
        voltage_v: float = 230.0,
        unit: RateUnit | str = RateUnit.A,
    ) -> CompositeSchedule:
        """The effective limit from ``start`` (whole seconds) for ``duration_s`` seconds.

        ``max_current_a`` is the hardware rating: it fills unlimited periods and caps the
        rest. For EVSE 0 only the station-wide caps count. W values use
        ``phases * voltage_v`` per period.
        """
        origin = as_utc(start).replace(microsecond=0)
        rate_unit = RateUnit(str(unit).upper())
        query = _query(evse_id, transaction_id, tx_start, origin, phases, voltage_v)
        end = origin + timedelta(seconds=duration_s)
        moments = {origin} | {t for t in self._breakpoints(origin, end, query) if origin < t < end}
        periods: list[CompositePeriod] = []
        for moment in sorted(moments):
            limit = self._evaluate(moment, query)
            value = _composite_value(limit, max_current_a, rate_unit, phases, voltage_v)
            offset_s = round((moment - origin).total_seconds())
            _append_merged(periods, CompositePeriod(offset_s, value, limit.number_phases))
        return CompositeSchedule(evse_id, origin, duration_s, rate_unit, tuple(periods))

    def _evaluate(self, moment: datetime, query: _Query) -> Limit:
        """Stack the purposes at ``moment``: Tx over TxDefault, capped by the caps."""
        own: Limit | None = None
        if query.evse_id != 0:
            if query.transaction_id is not None:
                own = self._winner(Purpose.TX, moment, query)
            if own is None:
                own = self._winner(Purpose.TX_DEFAULT, moment, query)
        caps = (self._winner(purpose, moment, query) for purpose in _CAPS)
        return _tightest([own, *caps])

    def _winner(self, purpose: Purpose, moment: datetime, query: _Query) -> Limit | None:
        """The limit of the highest-stack profile of ``purpose`` in effect at ``moment``."""
        candidates = sorted(
            (
                (profile.stack_level, evse_id != 0, profile)
                for evse_id, profile in self._relevant(query)
                if profile.purpose is purpose and profile.valid_at(moment)
            ),
            key=lambda item: (item[0], item[1]),
            reverse=True,
        )
        for _, _, profile in candidates:
            limit = _profile_limit(profile, moment, query)
            if limit is not None:
                return limit
        return None

    def _relevant(self, query: _Query) -> Iterator[tuple[int, ChargingProfile]]:
        """Profiles on the EVSE or station-wide; TxProfiles only for this transaction."""
        for evse_id, profile in self._installed.values():
            if evse_id not in (0, query.evse_id):
                continue
            if profile.purpose is Purpose.TX and profile.transaction_id not in (
                None,
                query.transaction_id,
            ):
                continue
            yield evse_id, profile

    def _breakpoints(self, origin: datetime, end: datetime, query: _Query) -> Iterator[datetime]:
        """Every moment in [origin, end) at which some relevant profile may change."""
        for _, profile in self._relevant(query):
            yield from (t for t in (profile.valid_from, profile.valid_to) if t is not None)
            schedule = profile.schedule
            for anchor in _anchors(profile, origin, end, query):
                yield from (anchor + timedelta(seconds=p.start_s) for p in schedule.periods)
                if schedule.duration_s is not None:
                    yield anchor + timedelta(seconds=schedule.duration_s)


def _query(
    evse_id: int,
    transaction_id: str | int | None,
    tx_start: datetime | None,
    default_anchor: datetime,
    phases: int,
    voltage_v: float,
) -> _Query:
    if phases < 1 or voltage_v <= 0:
        raise ValueError(f"need phases >= 1 and voltage_v > 0, got {phases}, {voltage_v}")
    return _Query(
        evse_id=evse_id,
        transaction_id=None if transaction_id is None else str(transaction_id),
        tx_start=None if tx_start is None else as_utc(tx_start),
        default_anchor=default_anchor,
        phases=phases,
        voltage_v=voltage_v,
    )


def _schedule_offset_s(profile: ChargingProfile, moment: datetime, query: _Query) -> float | None:
    """Seconds into the profile's schedule at ``moment``, or None if it is not running."""
    schedule = profile.schedule
    if profile.kind is Kind.RECURRING:
        anchor = schedule.start or _RECURRENCE_EPOCH
        elapsed_s = (moment - anchor).total_seconds()
        if elapsed_s < 0:
            return None
        offset_s = elapsed_s % _cycle_s(profile)
    elif profile.kind is Kind.ABSOLUTE and schedule.start is not None:
        offset_s = (moment - schedule.start).total_seconds()
    else:
        offset_s = (moment - query.anchor).total_seconds()
    if offset_s < 0 or (schedule.duration_s is not None and offset_s >= schedule.duration_s):
        return None
    return offset_s


def _anchors(profile: ChargingProfile, origin: datetime, end: datetime, query: _Query) -> list[datetime]:
    """Start times of the profile's schedule occurrences that may touch [origin, end)."""
    schedule = profile.schedule
    if profile.kind is Kind.RECURRING:
        anchor = schedule.start or _RECURRENCE_EPOCH
        cycle_s = _cycle_s(profile)
        first = max(0, math.floor((origin - anchor).total_seconds() / cycle_s))
        last = math.ceil((end - anchor).total_seconds() / cycle_s)
        return [anchor + timedelta(seconds=k * cycle_s) for k in range(first, last + 1)]
    if profile.kind is Kind.ABSOLUTE and schedule.start is not None:
        return [schedule.start]
    return [query.anchor]


def _cycle_s(profile: ChargingProfile) -> int:
    return WEEK_S if profile.recurrency is Recurrency.WEEKLY else DAY_S


def _profile_limit(profile: ChargingProfile, moment: datetime, query: _Query) -> Limit | None:
    """The profile's own limit at ``moment`` in A per phase, or None if not in effect."""
    offset_s = _schedule_offset_s(profile, moment, query)
    if offset_s is None:
        return None
    period = _period_at(profile.schedule.periods, offset_s)
    if profile.schedule.rate_unit is RateUnit.A:
        return Limit(period.limit, period.number_phases)
    phases = min(query.phases, period.number_phases or query.phases)
    return Limit(period.limit / (phases * query.voltage_v), period.number_phases)


def _period_at(periods: tuple[Period, ...], offset_s: float) -> Period:
    """The last period starting at or before ``offset_s`` (the first starts at 0)."""
    current = periods[0]
    for period in periods[1:]:
        if period.start_s > offset_s:
            break
        current = period
    return current


def _tightest(limits: Sequence[Limit | None]) -> Limit:
    """The lowest current and fewest phases among the given limits."""
    currents = [lim.current_a for lim in limits if lim is not None and lim.current_a is not None]
    phases = [lim.number_phases for lim in limits if lim is not None and lim.number_phases]
    return Limit(min(currents, default=None), min(phases, default=None))


def _composite_value(
    limit: Limit, max_current_a: float, unit: RateUnit, phases: int, voltage_v: float
) -> float:
    """A composite period's limit in ``unit``, capped by the hardware, rounded down to 0.1."""
    current_a = min(max_current_a, math.inf if limit.current_a is None else limit.current_a)
    if unit is RateUnit.W:
        current_a *= min(phases, limit.number_phases or phases) * voltage_v
    return math.floor(current_a * 10 + 1e-6) / 10


def _append_merged(periods: list[CompositePeriod], period: CompositePeriod) -> None:
    """Append unless it repeats the previous period; replace one at the same second."""
    if periods and periods[-1].start_period_s == period.start_period_s:
        periods.pop()
    if periods and (periods[-1].limit, periods[-1].number_phases) == (
        period.limit,
        period.number_phases,
    ):
        return
    periods.append(period)


def _check_placement(profile: ChargingProfile, evse_id: int) -> None:
    """Reject profiles on an EVSE their purpose does not allow."""
    if evse_id < 0:
        raise ProfileRejected(f"invalid evse/connector id {evse_id}")
    if profile.purpose is Purpose.STATION_MAX and evse_id != 0:
        raise ProfileRejected("a station max profile must be installed on evse/connector 0")
    if profile.purpose is Purpose.TX and evse_id == 0:
        raise ProfileRejected("a TxProfile must target an evse/connector > 0")


def _same_slot(old: ChargingProfile, new: ChargingProfile) -> bool:
    """Whether ``new`` takes the place of ``old`` (same stackLevel and purpose)."""
    if (old.stack_level, old.purpose) != (new.stack_level, new.purpose):
        return False
    return new.purpose is not Purpose.TX or old.transaction_id == new.transaction_id


def _matches(criteria: ClearCriteria, evse_id: int, profile: ChargingProfile) -> bool:
    if criteria.profile_id is not None:
        return profile.profile_id == criteria.profile_id
    return (
        criteria.evse_id in (None, evse_id)
        and criteria.purpose in (None, profile.purpose)
        and criteria.stack_level in (None, profile.stack_level)
    )


# --- Parsing: untyped OCPP payloads stop here ---------------------------------------------


def parse_profile(payload: Mapping[str, Any]) -> ChargingProfile:
    """Parse a 1.6 csChargingProfiles or 2.0.1 chargingProfile dict; raises ProfileRejected."""
    data = camel_keys(payload)
    try:
        return _parse_profile(data)
    except ProfileRejected:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ProfileRejected(f"invalid charging profile: {exc!r}") from exc


def parse_set_charging_profile(request: Mapping[str, Any]) -> tuple[int, ChargingProfile]:
    """``(evse_id, profile)`` from a SetChargingProfile request of either version."""
    data = camel_keys(request)
    if "csChargingProfiles" in data:
        return _int(data.get("connectorId", 0)), parse_profile(data["csChargingProfiles"])
    if "chargingProfile" in data:
        return _int(data.get("evseId", 0)), parse_profile(data["chargingProfile"])
    raise ProfileRejected("no csChargingProfiles / chargingProfile in request")


def parse_clear_charging_profile(request: Mapping[str, Any]) -> ClearCriteria:
    """The criteria of a ClearChargingProfile request (1.6 flat, 2.0.1 with criteria)."""
    data = camel_keys(request)
    try:
        if "chargingProfileCriteria" in data or "chargingProfileId" in data:
            nested = data.get("chargingProfileCriteria") or {}
            return _criteria(data.get("chargingProfileId"), nested, "evseId")
        return _criteria(data.get("id"), data, "connectorId")
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileRejected(f"invalid ClearChargingProfile request: {exc!r}") from exc


def parse_get_composite_schedule(request: Mapping[str, Any]) -> tuple[int, int, RateUnit | None]:
    """``(evse_id, duration_s, unit or None)`` from a GetCompositeSchedule request."""
    data = camel_keys(request)
    evse_id = _int(data["connectorId"] if "connectorId" in data else data["evseId"])
    unit = data.get("chargingRateUnit")
    return evse_id, _int(data["duration"]), None if unit is None else RateUnit(_text(unit).upper())


def camel_keys(value: Any) -> Any:
    """``value`` with every dict key in camelCase (undoes the ocpp library's snake_case)."""
    if isinstance(value, Mapping):
        return {_camel(str(key)): camel_keys(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [camel_keys(item) for item in value]
    return value


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _criteria(profile_id: Any, data: Mapping[str, Any], evse_key: str) -> ClearCriteria:
    purpose = data.get("chargingProfilePurpose")
    return ClearCriteria(
        profile_id=_opt_int(profile_id),
        evse_id=_opt_int(data.get(evse_key)),
        purpose=None if purpose is None else _parse_purpose(purpose),
        stack_level=_opt_int(data.get("stackLevel")),
    )


def _parse_profile(data: Mapping[str, Any]) -> ChargingProfile:
    profile_id = _int(data["chargingProfileId"] if "chargingProfileId" in data else data["id"])
    kind = Kind(_text(data["chargingProfileKind"]))
    recurrency = data.get("recurrencyKind")
    if kind is Kind.RECURRING and recurrency is None:
        raise ProfileRejected("a Recurring profile needs recurrencyKind")
    schedules = data["chargingSchedule"]
    if isinstance(schedules, list):  # 2.0.1: 1-3 schedules; we follow the first
        schedules = schedules[0]
    stack_level = _int(data["stackLevel"])
    if stack_level < 0:
        raise ProfileRejected(f"negative stackLevel {stack_level}")
    transaction_id = data.get("transactionId")
    return ChargingProfile(
        profile_id=profile_id,
        stack_level=stack_level,
        purpose=_parse_purpose(data["chargingProfilePurpose"]),
        kind=kind,
        schedule=_parse_schedule(schedules),
        recurrency=None if recurrency is None else Recurrency(_text(recurrency)),
        valid_from=_opt_timestamp(data.get("validFrom")),
        valid_to=_opt_timestamp(data.get("validTo")),
        transaction_id=None if transaction_id is None else _text(transaction_id),
        payload=data,
    )


def _parse_schedule(data: Mapping[str, Any]) -> Schedule:
    periods = tuple(
        sorted(
            (_parse_period(p) for p in data["chargingSchedulePeriod"]),
            key=lambda period: period.start_s,
        )
    )
    if not periods or periods[0].start_s != 0:
        raise ProfileRejected("the first chargingSchedulePeriod must start at 0")
    if len({period.start_s for period in periods}) != len(periods):
        raise ProfileRejected("two chargingSchedulePeriods start at the same second")
    duration = _opt_int(data.get("duration"))
    if duration is not None and duration < 0:
        raise ProfileRejected(f"negative duration {duration}")
    return Schedule(
        rate_unit=RateUnit(_text(data["chargingRateUnit"]).upper()),
        periods=periods,
        start=_opt_timestamp(data.get("startSchedule")),
        duration_s=duration,
    )


def _parse_period(data: Mapping[str, Any]) -> Period:
    start_s, limit = _int(data["startPeriod"]), float(data["limit"])
    phases = _opt_int(data.get("numberPhases"))
    if start_s < 0 or not math.isfinite(limit) or limit < 0:
        raise ProfileRejected(f"invalid chargingSchedulePeriod {dict(data)}")
    if phases is not None and not 1 <= phases <= 3:
        raise ProfileRejected(f"numberPhases must be 1-3, got {phases}")
    return Period(start_s, limit, phases)


def _parse_purpose(value: Any) -> Purpose:
    try:
        return _PURPOSES[_text(value)]
    except KeyError:
        raise ProfileRejected(f"unknown chargingProfilePurpose {value!r}") from None


def _text(value: Any) -> str:
    """A string from a str, a str-valued Enum or a number."""
    return str(value.value) if isinstance(value, Enum) else str(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"not an integer: {value!r}")
    return int(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _opt_timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    return as_utc(value) if isinstance(value, datetime) else parse_datetime(value)
