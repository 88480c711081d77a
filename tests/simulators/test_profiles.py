"""Smart-charging profile stacking for OCPP 1.6 and 2.0.1 payloads."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocppj.timestamps import as_utc, format_datetime
from simulators.ev import EVState, SupplySpec, random_ev_config, step
from simulators.profiles import (
    ChargingProfile,
    ClearCriteria,
    CompositePeriod,
    Kind,
    Limit,
    ProfileRejected,
    ProfileSet,
    Purpose,
    RateUnit,
    Recurrency,
    parse_clear_charging_profile,
    parse_get_composite_schedule,
    parse_set_charging_profile,
)

T0 = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday, 00:00 UTC
HOUR = timedelta(hours=1)
Periods = float | Sequence[tuple[int, float]]
Builder = Callable[..., dict[str, Any]]


def _periods(limits: Periods, number_phases: int | None) -> list[dict[str, Any]]:
    pairs = [(0, limits)] if isinstance(limits, float | int) else limits
    periods: list[dict[str, Any]] = []
    for start_s, limit in pairs:
        period: dict[str, Any] = {"startPeriod": start_s, "limit": limit}
        if number_phases is not None:
            period["numberPhases"] = number_phases
        periods.append(period)
    return periods


def v16(
    profile_id: int,
    purpose: str,
    limits: Periods,
    *,
    stack: int = 0,
    unit: str = "A",
    kind: str = "Absolute",
    start: datetime | None = T0,
    duration: int | None = None,
    recurrency: str | None = None,
    tx: int | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    number_phases: int | None = None,
) -> dict[str, Any]:
    """A csChargingProfiles dict as a 1.6 CSMS sends it."""
    if purpose == "ChargingStationMaxProfile":
        purpose = "ChargePointMaxProfile"
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": _periods(limits, number_phases),
    }
    if start is not None:
        schedule["startSchedule"] = format_datetime(start)
    if duration is not None:
        schedule["duration"] = duration
    profile: dict[str, Any] = {
        "chargingProfileId": profile_id,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
    }
    optional = {
        "recurrencyKind": recurrency,
        "transactionId": tx,
        "validFrom": None if valid_from is None else format_datetime(valid_from),
        "validTo": None if valid_to is None else format_datetime(valid_to),
    }
    profile.update({key: value for key, value in optional.items() if value is not None})
    return profile


def v201(profile_id: int, purpose: str, limits: Periods, **options: Any) -> dict[str, Any]:
    """The same profile as a 2.0.1 chargingProfile dict (id, schedule list, string tx id)."""
    if purpose == "ChargePointMaxProfile":
        purpose = "ChargingStationMaxProfile"
    legacy = v16(profile_id, purpose, limits, **options)
    profile = {key: value for key, value in legacy.items() if key != "chargingProfileId"}
    profile["id"] = profile_id
    schedule = dict(legacy["chargingSchedule"], id=profile_id)
    profile["chargingSchedule"] = [schedule]
    if "transactionId" in profile:
        profile["transactionId"] = str(profile["transactionId"])
    return profile


BOTH = pytest.mark.parametrize("build", [v16, v201], ids=["v16", "v201"])


def _station(*installs: tuple[dict[str, Any], int]) -> ProfileSet:
    profiles = ProfileSet()
    for payload, evse_id in installs:
        profiles.install(payload, evse_id)
    return profiles


def test_no_profiles_means_unlimited() -> None:
    assert ProfileSet().limit_at(T0, 1, phases=3) is None


@BOTH
def test_highest_stack_level_wins_within_a_purpose(build: Builder) -> None:
    profiles = _station(
        (build(1, "TxDefaultProfile", 10.0, stack=1), 1),
        (build(2, "TxDefaultProfile", 20.0, stack=3), 1),
        (build(3, "TxDefaultProfile", 6.0, stack=2), 1),
    )
    assert profiles.limit_at(T0 + HOUR, 1, phases=3) == 20.0


@BOTH
@pytest.mark.parametrize(("tx_limit", "default_limit"), [(20.0, 10.0), (8.0, 16.0)])
def test_tx_profile_overrides_tx_default(build: Builder, tx_limit: float, default_limit: float) -> None:
    profiles = _station(
        (build(1, "TxDefaultProfile", default_limit, stack=5), 1),
        (build(2, "TxProfile", tx_limit, stack=0, tx=7), 1),
    )
    assert profiles.limit_at(T0 + HOUR, 1, 7, T0, phases=3) == tx_limit
    assert profiles.limit_at(T0 + HOUR, 1, None, None, phases=3) == default_limit


@BOTH
def test_tx_profile_of_another_transaction_is_ignored(build: Builder) -> None:
    profiles = _station(
        (build(1, "TxDefaultProfile", 16.0), 1),
        (build(2, "TxProfile", 8.0, tx=7), 1),
    )
    assert profiles.limit_at(T0 + HOUR, 1, 8, T0, phases=3) == 16.0
    assert profiles.limit_at(T0 + HOUR, 1, "7", T0, phases=3) == 8.0


def test_tx_profile_without_transaction_id_applies_to_the_running_transaction() -> None:
    profiles = _station((v16(1, "TxProfile", 8.0, kind="Relative", start=None), 1))
    assert profiles.limit_at(T0, 1, 42, T0, phases=3) == 8.0
    assert profiles.limit_at(T0, 1, None, None, phases=3) is None


@BOTH
@pytest.mark.parametrize("purpose", ["TxProfile", "TxDefaultProfile"])
def test_station_max_profile_caps_tx_profile(build: Builder, purpose: str) -> None:
    profiles = _station(
        (build(1, "ChargePointMaxProfile", 10.0), 0),
        (build(2, purpose, 32.0, tx=1 if purpose == "TxProfile" else None), 1),
    )
    assert profiles.limit_at(T0 + HOUR, 1, 1, T0, phases=3) == 10.0


@BOTH
def test_station_max_profile_does_not_raise_a_lower_limit(build: Builder) -> None:
    profiles = _station((build(1, "ChargePointMaxProfile", 32.0), 0), (build(2, "TxDefaultProfile", 6.0), 1))
    assert profiles.limit_at(T0 + HOUR, 1, phases=3) == 6.0


@pytest.mark.parametrize("evse_id", [0, 1])
def test_external_constraints_cap_the_limit(evse_id: int) -> None:
    profiles = _station(
        (v201(1, "ChargingStationMaxProfile", 32.0), 0),
        (v201(2, "TxDefaultProfile", 16.0), 1),
        (v201(3, "ChargingStationExternalConstraints", 12.0), evse_id),
    )
    assert profiles.limit_at(T0 + HOUR, 1, phases=3) == 12.0


@pytest.mark.parametrize(
    ("watts", "number_phases", "phases", "voltage_v", "expected_a"),
    [
        (11_040.0, None, 3, 230.0, 16.0),
        (7_360.0, None, 1, 230.0, 32.0),
        (11_040.0, 1, 3, 230.0, 48.0),  # the period restricts charging to one phase
        (11_040.0, 3, 1, 230.0, 48.0),  # only one phase in use
        (17_280.0, None, 3, 240.0, 24.0),
        (50_000.0, None, 1, 400.0, 125.0),  # DC: one "phase" at the DC voltage
    ],
)
def test_watt_limit_converted_with_phases(
    watts: float, number_phases: int | None, phases: int, voltage_v: float, expected_a: float
) -> None:
    profiles = _station((v16(1, "TxDefaultProfile", watts, unit="W", number_phases=number_phases), 1))
    limit = profiles.effective_limit(T0, 1, phases=phases, voltage_v=voltage_v)
    assert limit.current_a == pytest.approx(expected_a)
    assert limit.number_phases == number_phases


@BOTH
@pytest.mark.parametrize(
    ("since_tx_start", "expected_a"),
    [(timedelta(0), 10.0), (HOUR / 2, 10.0), (HOUR, 20.0), (3 * HOUR, 20.0)],
)
def test_relative_profile_starts_at_transaction_start(
    build: Builder, since_tx_start: timedelta, expected_a: float
) -> None:
    tx_start = T0 + 5 * HOUR
    profiles = _station(
        (build(1, "TxProfile", [(0, 10.0), (3600, 20.0)], kind="Relative", start=None, tx=3), 1)
    )
    assert profiles.limit_at(tx_start + since_tx_start, 1, 3, tx_start, phases=3) == expected_a


def test_relative_profile_without_transaction_uses_its_first_period() -> None:
    profiles = _station((v16(1, "TxDefaultProfile", [(0, 10.0), (60, 20.0)], kind="Relative", start=None), 1))
    assert profiles.limit_at(T0 + 24 * HOUR, 1, phases=3) == 10.0


@BOTH
@pytest.mark.parametrize(
    ("offset", "expected_a"),
    [
        (timedelta(seconds=-1), 32.0),  # before startSchedule: the lower stack level
        (timedelta(0), 10.0),
        (timedelta(seconds=1799), 10.0),
        (timedelta(seconds=1800), 14.0),
        (timedelta(seconds=3599), 14.0),
        (timedelta(seconds=3600), 32.0),  # duration over: the lower stack level again
    ],
)
def test_period_boundaries_and_duration_are_honoured(
    build: Builder, offset: timedelta, expected_a: float
) -> None:
    start = T0 + 2 * HOUR
    profiles = _station(
        (build(1, "TxDefaultProfile", 32.0, stack=0), 1),
        (build(2, "TxDefaultProfile", [(0, 10.0), (1800, 14.0)], stack=1, start=start, duration=3600), 1),
    )
    assert profiles.limit_at(start + offset, 1, phases=3) == expected_a


@BOTH
@pytest.mark.parametrize(
    ("moment", "expected_a"),
    [
        (T0 - HOUR, None),
        (T0, 8.0),
        (T0 + HOUR, None),
    ],
)
def test_validity_window_is_honoured(build: Builder, moment: datetime, expected_a: float | None) -> None:
    profiles = _station(
        (build(1, "TxDefaultProfile", 8.0, start=T0 - 24 * HOUR, valid_from=T0, valid_to=T0 + HOUR), 1)
    )
    assert profiles.limit_at(moment, 1, phases=3) == expected_a


@BOTH
@pytest.mark.parametrize(
    ("moment", "expected_a"),
    [
        (T0 + 10 * HOUR, None),  # before the first occurrence
        (T0 + 18 * HOUR, 8.0),
        (T0 + 2 * 24 * HOUR + 19 * HOUR, 8.0),  # two days later, still 18:00-22:00
        (T0 + 2 * 24 * HOUR + 21 * HOUR, 12.0),
        (T0 + 2 * 24 * HOUR + 22 * HOUR, None),
        (T0 + 2 * 24 * HOUR + 17 * HOUR, None),
    ],
)
def test_daily_recurring_profile_wraps(build: Builder, moment: datetime, expected_a: float | None) -> None:
    profiles = _station(
        (
            build(
                1,
                "ChargePointMaxProfile",
                [(0, 8.0), (3 * 3600, 12.0)],
                kind="Recurring",
                recurrency="Daily",
                start=T0 + 18 * HOUR,
                duration=4 * 3600,
            ),
            0,
        )
    )
    assert profiles.limit_at(moment, 1, phases=3) == expected_a


@BOTH
@pytest.mark.parametrize(("days_after_monday", "expected_a"), [(0, 6.0), (5, 16.0), (7, 6.0), (14 + 5, 16.0)])
def test_weekly_recurring_profile_wraps(build: Builder, days_after_monday: int, expected_a: float) -> None:
    weekend_s = 5 * 24 * 3600
    profiles = _station(
        (
            build(
                1,
                "TxDefaultProfile",
                [(0, 6.0), (weekend_s, 16.0)],
                kind="Recurring",
                recurrency="Weekly",
                start=T0,
            ),
            0,
        )
    )
    moment = T0 + days_after_monday * 24 * HOUR + 12 * HOUR
    assert profiles.limit_at(moment, 2, phases=3) == expected_a


def test_tx_default_on_evse_zero_applies_to_every_evse() -> None:
    profiles = _station((v16(1, "TxDefaultProfile", 13.0), 0))
    assert [profiles.limit_at(T0, evse, phases=3) for evse in (1, 2, 3)] == [13.0] * 3


@pytest.mark.parametrize(
    ("own_stack", "expected_a"), [(0, 13.0), (1, 7.0), (2, 7.0)], ids=["lower", "tie", "higher"]
)
def test_evse_tx_default_beats_the_station_wide_one_unless_stacked_lower(
    own_stack: int, expected_a: float
) -> None:
    profiles = _station(
        (v16(1, "TxDefaultProfile", 13.0, stack=1), 0),
        (v16(2, "TxDefaultProfile", 7.0, stack=own_stack), 1),
    )
    assert profiles.limit_at(T0, 1, phases=3) == expected_a
    assert profiles.limit_at(T0, 2, phases=3) == 13.0


def test_evse_zero_limit_counts_only_station_caps() -> None:
    profiles = _station(
        (v16(1, "TxDefaultProfile", 6.0), 0),
        (v16(2, "ChargePointMaxProfile", 40.0), 0),
    )
    assert profiles.limit_at(T0, 0, phases=3) == 40.0


def test_number_phases_restriction_is_reported() -> None:
    profiles = _station(
        (v201(1, "ChargingStationMaxProfile", 32.0, number_phases=3), 0),
        (v201(2, "TxDefaultProfile", 16.0, number_phases=1), 1),
    )
    assert profiles.effective_limit(T0, 1, phases=3) == Limit(16.0, 1)


@BOTH
def test_install_replaces_the_same_id_even_on_another_evse(build: Builder) -> None:
    profiles = _station(
        (build(1, "TxDefaultProfile", 10.0, stack=1), 1),
        (build(1, "TxDefaultProfile", 20.0, stack=2), 2),
    )
    assert [(evse, p.profile_id) for evse, p in profiles.profiles()] == [(2, 1)]
    assert profiles.limit_at(T0, 1, phases=3) is None


@BOTH
def test_install_replaces_same_stack_level_and_purpose_on_the_same_evse(build: Builder) -> None:
    profiles = _station(
        (build(1, "TxDefaultProfile", 10.0, stack=1), 1),
        (build(2, "TxDefaultProfile", 20.0, stack=1), 1),
        (build(3, "TxDefaultProfile", 6.0, stack=1), 2),
        (build(4, "TxDefaultProfile", 8.0, stack=0), 1),
    )
    assert sorted(p.profile_id for _, p in profiles.profiles()) == [2, 3, 4]
    assert profiles.limit_at(T0, 1, phases=3) == 20.0


def test_tx_profiles_of_different_transactions_do_not_replace_each_other() -> None:
    profiles = _station((v201(1, "TxProfile", 10.0, tx=1), 1), (v201(2, "TxProfile", 12.0, tx=2), 1))
    assert len(profiles) == 2


@pytest.mark.parametrize(
    ("payload", "evse_id"),
    [
        (v16(1, "ChargePointMaxProfile", 10.0), 1),
        (v201(1, "TxProfile", 10.0, tx=1), 0),
        (v16(1, "TxDefaultProfile", [(60, 10.0)]), 1),
        (v16(1, "TxDefaultProfile", [(0, 10.0), (0, 12.0)]), 1),
        (v16(1, "TxDefaultProfile", -1.0), 1),
        (v16(1, "TxDefaultProfile", 10.0, kind="Recurring"), 1),
        (v16(1, "TxDefaultProfile", 10.0, unit="kW"), 1),
        (v16(1, "TxDefaultProfile", 10.0, stack=-1), 1),
        (v16(1, "TxDefaultProfile", 10.0, number_phases=4), 1),
        ({**v16(1, "TxDefaultProfile", 10.0), "chargingProfilePurpose": "Nope"}, 1),
        ({**v16(1, "TxDefaultProfile", 10.0), "chargingProfileKind": "Sometimes"}, 1),
        ({**v201(1, "TxDefaultProfile", 10.0), "chargingSchedule": []}, 1),
        ({"stackLevel": 0}, 1),
        (v16(1, "TxDefaultProfile", 10.0), -1),
    ],
)
def test_invalid_or_misplaced_profiles_are_rejected(payload: dict[str, Any], evse_id: int) -> None:
    profiles = ProfileSet()
    with pytest.raises(ProfileRejected):
        profiles.install(payload, evse_id)
    assert len(profiles) == 0


def _clearable() -> ProfileSet:
    return _station(
        (v16(1, "ChargePointMaxProfile", 32.0, stack=0), 0),
        (v16(2, "TxDefaultProfile", 16.0, stack=1), 0),
        (v16(3, "TxDefaultProfile", 10.0, stack=2), 1),
        (v16(4, "TxProfile", 8.0, stack=2, tx=5), 1),
        (v16(5, "TxDefaultProfile", 12.0, stack=2), 2),
    )


@pytest.mark.parametrize(
    ("criteria", "matched", "left"),
    [
        ({"profile_id": 3}, True, [1, 2, 4, 5]),
        ({"profile_id": 3, "evse_id": 2}, True, [1, 2, 4, 5]),  # an id ignores other criteria
        ({"profile_id": 99}, False, [1, 2, 3, 4, 5]),
        ({"purpose": "TxDefaultProfile"}, True, [1, 4]),
        ({"purpose": "ChargePointMaxProfile"}, True, [2, 3, 4, 5]),
        ({"purpose": "ChargingStationMaxProfile"}, True, [2, 3, 4, 5]),
        ({"stack_level": 2}, True, [1, 2]),
        ({"evse_id": 1}, True, [1, 2, 5]),
        ({"evse_id": 0, "purpose": Purpose.TX_DEFAULT}, True, [1, 3, 4, 5]),
        ({"evse_id": 2, "stack_level": 0}, False, [1, 2, 3, 4, 5]),
        ({}, True, []),
    ],
)
def test_clear_removes_what_matches_and_says_whether_anything_did(
    criteria: dict[str, Any], matched: bool, left: list[int]
) -> None:
    profiles = _clearable()
    assert profiles.clear(**criteria) is matched
    assert sorted(p.profile_id for _, p in profiles.profiles()) == left


@pytest.mark.parametrize(
    ("request_payload", "expected"),
    [
        ({"id": 3}, ClearCriteria(profile_id=3)),
        (
            {"connectorId": 1, "chargingProfilePurpose": "TxProfile", "stackLevel": 2},
            ClearCriteria(evse_id=1, purpose=Purpose.TX, stack_level=2),
        ),
        ({"chargingProfileId": 3}, ClearCriteria(profile_id=3)),
        (
            {
                "chargingProfileCriteria": {
                    "evseId": 0,
                    "chargingProfilePurpose": "TxDefaultProfile",
                }
            },
            ClearCriteria(evse_id=0, purpose=Purpose.TX_DEFAULT),
        ),
        (
            {"charging_profile_criteria": {"evse_id": 1, "stack_level": 2}},
            ClearCriteria(evse_id=1, stack_level=2),
        ),
        ({}, ClearCriteria()),
    ],
)
def test_clear_requests_of_both_versions_are_understood(
    request_payload: dict[str, Any], expected: ClearCriteria
) -> None:
    assert parse_clear_charging_profile(request_payload) == expected
    assert _clearable().clear_request(request_payload) is True


def test_clearing_transaction_profiles_when_the_transaction_ends() -> None:
    profiles = _clearable()
    assert profiles.clear_transaction_profiles(1) is True
    assert profiles.clear_transaction_profiles(1) is False
    assert profiles.limit_at(T0, 1, 5, T0, phases=3) == 10.0


def test_snake_case_payloads_from_the_ocpp_library_are_accepted() -> None:
    request = {
        "connector_id": 1,
        "cs_charging_profiles": {
            "charging_profile_id": 9,
            "stack_level": 0,
            "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Absolute",
            "charging_schedule": {
                "start_schedule": "2025-01-06T00:00:00Z",
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": 11040}],
            },
        },
    }
    evse_id, profile = parse_set_charging_profile(request)
    profiles = ProfileSet()
    profiles.install(profile, evse_id)
    assert (evse_id, profile.profile_id) == (1, 9)
    assert profiles.limit_at(T0, 1, phases=3) == pytest.approx(16.0)
    assert profile.payload["chargingSchedule"]["chargingRateUnit"] == "W"


@pytest.mark.parametrize(
    ("request_payload", "evse_id", "profile_id"),
    [
        ({"connectorId": 2, "csChargingProfiles": v16(5, "TxDefaultProfile", 10.0)}, 2, 5),
        ({"evseId": 3, "chargingProfile": v201(6, "TxDefaultProfile", 10.0)}, 3, 6),
    ],
)
def test_set_charging_profile_requests_of_both_versions_are_understood(
    request_payload: dict[str, Any], evse_id: int, profile_id: int
) -> None:
    parsed_evse, profile = parse_set_charging_profile(request_payload)
    assert (parsed_evse, profile.profile_id) == (evse_id, profile_id)


def test_set_charging_profile_request_without_profile_is_rejected() -> None:
    with pytest.raises(ProfileRejected):
        parse_set_charging_profile({"connectorId": 1})


def test_v201_follows_the_first_of_several_schedules() -> None:
    payload = v201(1, "TxDefaultProfile", 10.0)
    payload["chargingSchedule"].append(dict(payload["chargingSchedule"][0], id=2))
    payload["chargingSchedule"][1]["chargingSchedulePeriod"] = [{"startPeriod": 0, "limit": 30}]
    assert _station((payload, 1)).limit_at(T0, 1, phases=3) == 10.0


def test_naive_and_offset_datetimes_are_normalised_to_utc() -> None:
    assert as_utc(datetime(2025, 1, 6, 10)) == T0 + 10 * HOUR
    cet = timezone(timedelta(hours=1))
    assert as_utc(datetime(2025, 1, 6, 11, tzinfo=cet)).tzinfo is UTC
    profiles = _station((v16(1, "TxDefaultProfile", 10.0, start=T0 + HOUR), 1))
    assert profiles.limit_at(datetime(2025, 1, 6, 1), 1, phases=3) == 10.0


def test_composite_schedule_lists_every_change_within_the_window() -> None:
    profiles = _station(
        (v16(1, "ChargePointMaxProfile", [(0, 32.0), (2 * 3600, 12.0)]), 0),
        (v16(2, "TxProfile", [(0, 16.0), (1800, 10.0)], kind="Relative", start=None, tx=1), 1),
    )
    tx_start = T0 + HOUR
    composite = profiles.composite_schedule(T0, 3 * 3600, 1, 1, tx_start, max_current_a=32.0, phases=3)
    assert composite.periods == (
        CompositePeriod(0, 32.0),  # no transaction running yet: only the 32 A cap
        CompositePeriod(3600, 16.0),
        CompositePeriod(3600 + 1800, 10.0),
    )
    assert (composite.start, composite.duration_s, composite.unit) == (T0, 3 * 3600, RateUnit.A)


def test_composite_schedule_in_watts_uses_phases_and_voltage() -> None:
    profiles = _station((v16(1, "TxDefaultProfile", [(0, 16.0), (600, 6.0)]), 1))
    composite = profiles.composite_schedule(T0, 1200, 1, max_current_a=32.0, phases=3, unit="W")
    assert [(p.start_period_s, p.limit) for p in composite.periods] == [(0, 11040.0), (600, 4140.0)]


def test_composite_schedule_fills_unlimited_time_with_the_hardware_rating() -> None:
    profiles = _station((v16(1, "TxDefaultProfile", 10.0, start=T0 + HOUR, duration=600), 1))
    composite = profiles.composite_schedule(T0, 7200, 1, max_current_a=25.0, phases=3)
    assert composite.periods == (
        CompositePeriod(0, 25.0),
        CompositePeriod(3600, 10.0),
        CompositePeriod(4200, 25.0),
    )


def test_composite_schedule_wraps_daily_recurrences() -> None:
    profiles = _station(
        (
            v16(
                1,
                "ChargePointMaxProfile",
                8.0,
                kind="Recurring",
                recurrency="Daily",
                start=T0 + 18 * HOUR,
                duration=4 * 3600,
            ),
            0,
        )
    )
    composite = profiles.composite_schedule(T0 + 24 * HOUR, 2 * 86400, 1, max_current_a=32.0, phases=3)
    starts = [(p.start_period_s // 3600, p.limit) for p in composite.periods]
    assert starts == [(0, 32.0), (18, 8.0), (22, 32.0), (42, 8.0), (46, 32.0)]


def test_composite_schedule_renders_both_versions() -> None:
    profiles = _station((v201(1, "TxDefaultProfile", 16.0, number_phases=1), 1))
    composite = profiles.composite_schedule(
        T0 + timedelta(microseconds=5), 600, 1, max_current_a=32.0, phases=3
    )
    period = {"startPeriod": 0, "limit": 16.0, "numberPhases": 1}
    assert composite.charging_schedule_v16() == {
        "duration": 600,
        "startSchedule": "2025-01-06T00:00:00Z",
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [period],
    }
    assert composite.schedule_v201() == {
        "evseId": 1,
        "duration": 600,
        "scheduleStart": "2025-01-06T00:00:00Z",
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [period],
    }


@pytest.mark.parametrize(
    ("request_payload", "expected"),
    [
        ({"connectorId": 1, "duration": 3600}, (1, 3600, None)),
        ({"connectorId": 0, "duration": 60, "chargingRateUnit": "W"}, (0, 60, RateUnit.W)),
        ({"evseId": 2, "duration": 86400, "chargingRateUnit": "A"}, (2, 86400, RateUnit.A)),
    ],
)
def test_get_composite_schedule_requests_of_both_versions_are_understood(
    request_payload: dict[str, Any], expected: tuple[int, int, RateUnit | None]
) -> None:
    assert parse_get_composite_schedule(request_payload) == expected


# --- Properties over random profile stacks --------------------------------------------------

PURPOSES = ["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile", "ChargingStationExternalConstraints"]
CAP_PURPOSES = {Purpose.STATION_MAX, Purpose.EXTERNAL}


@st.composite
def profile_installs(draw: st.DrawFn, profile_id: int) -> tuple[dict[str, Any], int]:
    """A random valid profile of either version and the EVSE it is installed on."""
    purpose = draw(st.sampled_from(PURPOSES))
    evse_id = {"ChargePointMaxProfile": 0, "TxProfile": 1}.get(purpose)
    if evse_id is None:
        evse_id = draw(st.sampled_from([0, 1]))
    unit = draw(st.sampled_from(["A", "W"]))
    top = 64.0 if unit == "A" else 45_000.0
    starts = sorted(draw(st.sets(st.integers(1, 2 * 86_400), max_size=3)))
    limits = draw(st.lists(st.floats(0.0, top), min_size=len(starts) + 1, max_size=len(starts) + 1))
    kind = draw(st.sampled_from(["Absolute", "Recurring", "Relative"]))
    offset_s = draw(st.integers(-3 * 86_400, 86_400))
    options: dict[str, Any] = {
        "stack": draw(st.integers(0, 3)),
        "unit": unit,
        "kind": kind,
        "start": draw(st.none() | st.just(T0 + timedelta(seconds=offset_s))),
        "duration": draw(st.none() | st.integers(60, 3 * 86_400)),
        "recurrency": draw(st.sampled_from(["Daily", "Weekly"])) if kind == "Recurring" else None,
        "tx": draw(st.sampled_from([1, 2])) if purpose == "TxProfile" else None,
        "number_phases": draw(st.none() | st.integers(1, 3)),
    }
    if draw(st.booleans()):
        options["valid_from"] = T0 + timedelta(seconds=draw(st.integers(-86_400, 86_400)))
    if draw(st.booleans()):
        options["valid_to"] = T0 + timedelta(seconds=draw(st.integers(0, 3 * 86_400)))
    build = draw(st.sampled_from([v16, v201]))
    periods = list(zip([0, *starts], limits, strict=True))
    return build(profile_id, purpose, periods, **options), evse_id


@st.composite
def stations(draw: st.DrawFn) -> ProfileSet:
    """A station with a random stack of up to eight profiles."""
    count = draw(st.integers(0, 8))
    profiles = ProfileSet()
    for profile_id in range(1, count + 1):
        payload, evse_id = draw(profile_installs(profile_id))
        profiles.install(payload, evse_id)
    return profiles


def _winning_cap_limits(
    profiles: ProfileSet, moment: datetime, tx_start: datetime, phases: int
) -> list[float]:
    """Per cap purpose, the limit of its highest-stacked profile in effect at ``moment``."""
    winners: list[float] = []
    for purpose in CAP_PURPOSES:
        in_effect = []
        for evse_id, profile in profiles.profiles():
            if profile.purpose is purpose:
                limit = _oracle_limit_a(profile, moment, tx_start, phases)
                if limit is not None:
                    in_effect.append((profile.stack_level, evse_id != 0, limit))
        if in_effect:
            winners.append(_top(in_effect))
    return winners


def _oracle_limit_a(
    profile: ChargingProfile, moment: datetime, tx_start: datetime, phases: int
) -> float | None:
    """One profile's own limit at ``moment``, worked out independently of ProfileSet."""
    if not profile.valid_at(moment):
        return None
    schedule = profile.schedule
    if profile.kind is Kind.RECURRING:
        anchor = schedule.start or datetime(1970, 1, 5, tzinfo=UTC)
        cycle = timedelta(days=7 if profile.recurrency is Recurrency.WEEKLY else 1)
        offset = (moment - anchor) % cycle if moment >= anchor else None
    elif profile.kind is Kind.ABSOLUTE and schedule.start is not None:
        offset = moment - schedule.start
    else:
        offset = moment - tx_start
    if offset is None or offset < timedelta(0):
        return None
    if schedule.duration_s is not None and offset >= timedelta(seconds=schedule.duration_s):
        return None
    period = [p for p in schedule.periods if timedelta(seconds=p.start_s) <= offset][-1]
    if schedule.rate_unit is RateUnit.A:
        return period.limit
    return period.limit / (min(phases, period.number_phases or 3) * 230.0)


def _top(in_effect: list[tuple[int, bool, float]]) -> float:
    """The limit of the highest stack level, the EVSE's own profile winning a tie."""
    best = max((stack, own) for stack, own, _ in in_effect)
    return min(limit for stack, own, limit in in_effect if (stack, own) == best)


@settings(max_examples=200, deadline=None)
@given(
    profiles=stations(),
    offset_s=st.integers(-86_400, 4 * 86_400),
    tx_id=st.sampled_from([1, 2]),
    tx_offset_s=st.integers(-86_400, 0),
    phases=st.sampled_from([1, 3]),
    seed=st.integers(0, 2**32),
    dt_s=st.floats(0.0, 900.0),
)
def test_limit_never_exceeds_a_station_cap_and_the_ev_never_exceeds_the_limit(
    profiles: ProfileSet,
    offset_s: int,
    tx_id: int,
    tx_offset_s: int,
    phases: int,
    seed: int,
    dt_s: float,
) -> None:
    moment = T0 + timedelta(seconds=offset_s)
    tx_start = moment + timedelta(seconds=tx_offset_s)
    limit = profiles.effective_limit(moment, 1, tx_id, tx_start, phases=phases)
    caps = _winning_cap_limits(profiles, moment, tx_start, phases)
    if caps:
        assert limit.current_a is not None
        assert all(limit.current_a <= cap + 1e-9 for cap in caps)

    supply = SupplySpec.ac(phases).limited_to(limit.number_phases)
    ev = EVState.arrive(random_ev_config(random.Random(seed)))
    _, reading = step(ev, dt_s, limit.current_a, supply=supply)
    if limit.current_a is not None:
        assert max(reading.current_a) <= limit.current_a + 1e-9
        assert reading.power_w <= limit.current_a * supply.phases * 230.0 + 1e-6


@settings(max_examples=100, deadline=None)
@given(
    profiles=stations(),
    start_offset_s=st.integers(-86_400, 2 * 86_400),
    duration_s=st.integers(1, 2 * 86_400),
    tx_offset_s=st.none() | st.integers(-86_400, 86_400),
    unit=st.sampled_from([RateUnit.A, RateUnit.W]),
    samples=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=10),
)
def test_composite_schedule_agrees_with_limit_at(
    profiles: ProfileSet,
    start_offset_s: int,
    duration_s: int,
    tx_offset_s: int | None,
    unit: RateUnit,
    samples: list[float],
) -> None:
    start = T0 + timedelta(seconds=start_offset_s)  # without a transaction Relative starts here
    tx_start = None if tx_offset_s is None else start + timedelta(seconds=tx_offset_s)
    tx_id = None if tx_start is None else 1
    composite = profiles.composite_schedule(
        start, duration_s, 1, tx_id, tx_start, max_current_a=32.0, phases=3, unit=unit
    )
    starts = [p.start_period_s for p in composite.periods]
    assert starts[0] == 0
    assert starts == sorted(set(starts))
    for fraction in samples:
        offset_s = int(fraction * duration_s)
        period = next(p for p in reversed(composite.periods) if p.start_period_s <= offset_s)
        moment = start + timedelta(seconds=offset_s)
        limit = profiles.effective_limit(moment, 1, tx_id, tx_start or start, phases=3)
        current_a = min(32.0, math.inf if limit.current_a is None else limit.current_a)
        used = min(3, limit.number_phases or 3)
        expected = current_a * (used * 230.0 if unit is RateUnit.W else 1.0)
        assert period.limit == pytest.approx(math.floor(expected * 10 + 1e-6) / 10)
        assert period.number_phases == limit.number_phases
