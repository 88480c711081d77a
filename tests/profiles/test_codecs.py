"""The per-version payloads are valid OCPP, and the answers read back in one shape."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from csms.ocpp.v16 import profiles as v16
from csms.ocpp.v201 import profiles as v201
from csms.profiles.rules import Kind, Period, Profile, ProfileInvalid, Purpose, RateUnit, Recurrency
from ocppj import schemas
from ocppj.versions import OcppVersion

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
FULL = Profile(profile_id=5, evse_id=1, purpose=Purpose.TX, stack_level=3, kind=Kind.RECURRING,
               unit=RateUnit.W, periods=(Period(0, 11000.04), Period(600, 7400.0, 1)),
               recurrency=Recurrency.DAILY,
               start_schedule=T0, duration_s=7200, valid_from=T0, valid_to=T0.replace(day=8),
               transaction_id="17", min_rate=1000.0)


def test_16_set_clear_and_composite_payloads_are_schema_valid() -> None:
    out = v16.set_profile(FULL)
    assert schemas.validate(OcppVersion.V16, out.action, out.payload, response=False) is None
    body = out.payload["csChargingProfiles"]
    assert out.payload["connectorId"] == 1 and body["transactionId"] == 17
    assert body["chargingSchedule"]["chargingSchedulePeriod"][0] == {"startPeriod": 0, "limit": 11000.0}
    assert body["chargingSchedule"]["startSchedule"] == "2026-12-07T08:00:00Z"
    assert v16.clear_profile(5).payload == {"id": 5}
    comp = v16.composite_schedule(1, 600, RateUnit.A)
    assert schemas.validate(OcppVersion.V16, comp.action, comp.payload, response=False) is None
    with pytest.raises(ProfileInvalid, match="transaction_id"):
        v16.set_profile(replace(FULL, transaction_id="abc"))


def test_201_set_clear_and_composite_payloads_are_schema_valid() -> None:
    out = v201.set_profile(FULL)
    assert schemas.validate(OcppVersion.V201, out.action, out.payload, response=False) is None
    assert out.payload["chargingProfile"]["transactionId"] == "17"
    assert out.payload["chargingProfile"]["chargingSchedule"][0]["id"] == 5
    clear = v201.clear_profile(5)
    assert schemas.validate(OcppVersion.V201, clear.action, clear.payload, response=False) is None
    comp = v201.composite_schedule(0, 600, None)
    assert comp.payload == {"evseId": 0, "duration": 600}


def test_composite_answers_read_into_one_shape() -> None:
    periods = [{"startPeriod": 0, "limit": 16.0}, {"startPeriod": 60, "limit": 10.0, "numberPhases": 1}]
    a16 = v16.composite_schedule(1, 120, None).read({
        "status": "Accepted", "connectorId": 1, "scheduleStart": "2026-12-07T08:00:00Z",
        "chargingSchedule": {"duration": 120, "chargingRateUnit": "A", "chargingSchedulePeriod": periods}})
    a201 = v201.composite_schedule(1, 120, None).read({
        "status": "Accepted",
        "schedule": {"evseId": 1, "duration": 120, "scheduleStart": "2026-12-07T08:00:00Z",
                                           "chargingRateUnit": "A", "chargingSchedulePeriod": periods}})
    assert a16 == a201
    assert a16.periods == (Period(0, 16.0), Period(60, 10.0, 1)) and a16.start == T0
    rejected = v201.composite_schedule(9, 120, None).read(
        {"status": "Rejected", "statusInfo": {"reasonCode": "UnknownEVSE"}})
    assert rejected.answer.status == "Rejected" and rejected.answer.detail == "UnknownEVSE"
    assert rejected.periods == () and rejected.evse_id == 9
