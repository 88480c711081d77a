"""The profile rules (pure): what may be sent to which version, and the field each refusal names."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from csms.profiles.rules import (
    Kind,
    Period,
    Profile,
    ProfileInvalid,
    Purpose,
    RateUnit,
    Recurrency,
    Source,
    check_composite_request,
    check_profile,
    profile_fields,
    profile_of_fields,
    source_of,
)
from ocppj.versions import OcppVersion

V16, V201 = OcppVersion.V16, OcppVersion.V201
T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
BASE = Profile(profile_id=5, evse_id=1, purpose=Purpose.TX_DEFAULT, stack_level=1, kind=Kind.ABSOLUTE,
               unit=RateUnit.A, periods=(Period(0, 16.0), Period(600, 8.0, 1)), start_schedule=T0)


@pytest.mark.parametrize("version", [V16, V201])
def test_a_well_formed_default_profile_passes_in_both_versions(version: OcppVersion) -> None:
    check_profile(BASE, version)


@pytest.mark.parametrize(("change", "version", "field"), [
    ({"periods": ()}, V16, "periods:"),
    ({"periods": (Period(10, 16.0),)}, V16, "periods[0].start_s"),
    ({"periods": (Period(0, 16.0), Period(0, 8.0))}, V16, "periods[1].start_s"),
    ({"periods": (Period(0, 16.0), Period(60, float("nan")))}, V201, "periods[1].limit"),
    ({"periods": (Period(0, -0.5),)}, V201, "periods[0].limit"),
    ({"periods": (Period(0, float("inf")),)}, V201, "periods[0].limit"),
    ({"periods": (Period(0, 6.0, 4),)}, V201, "periods[0].number_phases"),
    ({"profile_id": 0}, V16, "profile_id"),
    ({"profile_id": 800_001}, V16, "load balancer"),
    ({"evse_id": -1}, V16, "evse_id"),
    ({"purpose": Purpose.CHARGING_STATION_MAX, "evse_id": 0}, V16, "purpose"),
    ({"purpose": Purpose.CHARGE_POINT_MAX, "evse_id": 0}, V201, "purpose"),
    ({"purpose": Purpose.CHARGE_POINT_MAX}, V16, "evse_id"),
    ({"purpose": Purpose.TX, "evse_id": 0}, V16, "evse_id"),
    ({"purpose": Purpose.TX}, V201, "transaction_id"),
    ({"transaction_id": "42"}, V16, "transaction_id"),
    ({"stack_level": -1}, V16, "stack_level"),
    ({"kind": Kind.RECURRING}, V16, "recurrency"),
    ({"kind": Kind.RECURRING, "recurrency": Recurrency.DAILY, "start_schedule": None}, V16, "start_schedule"),
    ({"kind": Kind.RECURRING, "recurrency": Recurrency.DAILY, "duration_s": 90_000}, V16, "duration_s"),
    ({"recurrency": Recurrency.WEEKLY}, V16, "recurrency"),
    ({"kind": Kind.RELATIVE}, V201, "start_schedule"),
    ({"duration_s": 0}, V201, "duration_s"),
    ({"valid_from": T0, "valid_to": T0}, V201, "valid_to"),
    ({"min_rate": -1.0}, V201, "min_rate"),
])
def test_each_broken_rule_is_refused_naming_its_field(change: dict[str, object], version: OcppVersion,
                                                      field: str) -> None:
    with pytest.raises(ProfileInvalid, match=field.replace("[", r"\[").replace("]", r"\]")):
        check_profile(replace(BASE, **change), version)  # type: ignore[arg-type]


def test_transaction_profiles_name_their_transaction_in_2_0_1_only() -> None:
    check_profile(replace(BASE, purpose=Purpose.TX, transaction_id="tx-1"), V201)
    check_profile(replace(BASE, purpose=Purpose.TX), V16)


def test_the_balancer_ids_are_the_balancer_s() -> None:
    assert source_of(800_001) is Source.BALANCER and source_of(900_002) is Source.BALANCER
    assert source_of(1000) is Source.OPERATOR and source_of(1_000_000) is Source.OPERATOR
    assert BASE.source is Source.OPERATOR


def test_fields_round_trip() -> None:
    full = replace(BASE, kind=Kind.RECURRING, recurrency=Recurrency.WEEKLY, duration_s=3600, valid_from=T0,
                   valid_to=T0.replace(day=9), min_rate=6.0)
    assert profile_of_fields(profile_fields(full)) == full


def test_composite_requests_need_a_duration() -> None:
    check_composite_request(0, 60)
    with pytest.raises(ProfileInvalid, match="duration_s"):
        check_composite_request(1, 0)
    with pytest.raises(ProfileInvalid, match="evse_id"):
        check_composite_request(-1, 60)
