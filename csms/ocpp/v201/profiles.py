"""OCPP 2.0.1 charging-profile payloads: SetChargingProfile, ClearChargingProfile and
GetCompositeSchedule built from ``csms.profiles.rules`` values, and their answers read back."""

from __future__ import annotations

from typing import Any

from csms.errors import ResponseInvalid
from csms.ocpp.outbound import Outbound, detail_of
from csms.profiles.rules import Answer, CompositeSchedule, Period, Profile, RateUnit
from ocppj.timestamps import format_datetime, parse_datetime


def _period(p: Period) -> dict[str, Any]:
    out: dict[str, Any] = {"startPeriod": p.start_s, "limit": round(p.limit, 1)}
    if p.number_phases is not None:
        out["numberPhases"] = p.number_phases
    return out


def answer_of(reply: dict[str, Any]) -> Answer:
    """``status`` and the optional ``statusInfo`` of a 2.0.1 answer."""
    status = reply.get("status")
    if not isinstance(status, str):
        raise ResponseInvalid("the answer has no status")
    return Answer(status, detail_of(reply.get("statusInfo")))


def set_profile(profile: Profile) -> Outbound[Answer]:
    """SetChargingProfile on EVSE ``evse_id`` with one schedule (its id is the profile's)."""
    schedule: dict[str, Any] = {
        "id": profile.profile_id, "chargingRateUnit": profile.unit.value,
        "chargingSchedulePeriod": [_period(p) for p in profile.periods],
    }
    if profile.duration_s is not None:
        schedule["duration"] = profile.duration_s
    if profile.start_schedule is not None:
        schedule["startSchedule"] = format_datetime(profile.start_schedule, timespec="seconds")
    if profile.min_rate is not None:
        schedule["minChargingRate"] = round(profile.min_rate, 1)
    body: dict[str, Any] = {
        "id": profile.profile_id, "stackLevel": profile.stack_level,
        "chargingProfilePurpose": profile.purpose.value, "chargingProfileKind": profile.kind.value,
        "chargingSchedule": [schedule],
    }
    if profile.recurrency is not None:
        body["recurrencyKind"] = profile.recurrency.value
    if profile.valid_from is not None:
        body["validFrom"] = format_datetime(profile.valid_from, timespec="seconds")
    if profile.valid_to is not None:
        body["validTo"] = format_datetime(profile.valid_to, timespec="seconds")
    if profile.transaction_id is not None:
        body["transactionId"] = profile.transaction_id
    return Outbound("SetChargingProfile", {"evseId": profile.evse_id, "chargingProfile": body}, answer_of)


def clear_profile(profile_id: int) -> Outbound[Answer]:
    """ClearChargingProfile of one profile (Accepted, or Unknown when the station has none by that id)."""
    return Outbound("ClearChargingProfile", {"chargingProfileId": profile_id}, answer_of)


def composite_schedule(evse_id: int, duration_s: int, unit: RateUnit | None) -> Outbound[CompositeSchedule]:
    payload: dict[str, Any] = {"evseId": evse_id, "duration": duration_s}
    if unit is not None:
        payload["chargingRateUnit"] = unit.value

    def read(reply: dict[str, Any]) -> CompositeSchedule:
        answer = answer_of(reply)
        schedule = reply.get("schedule")
        if not isinstance(schedule, dict):
            return CompositeSchedule(answer, evse_id)
        return CompositeSchedule(
            answer, int(schedule.get("evseId", evse_id)), parse_datetime(schedule["scheduleStart"]),
            int(schedule["duration"]), RateUnit(schedule["chargingRateUnit"]),
            tuple(Period(int(p["startPeriod"]), float(p["limit"]), p.get("numberPhases"))
                  for p in schedule["chargingSchedulePeriod"]),
        )

    return Outbound("GetCompositeSchedule", payload, read)


def get_charging_profiles(request_id: int, evse_id: int | None) -> Outbound[Answer]:
    """GetChargingProfiles of every installed profile (of EVSE ``evse_id``; 0: the station's own):
    Accepted (ReportChargingProfiles with ``request_id`` follow) or NoProfiles."""
    payload: dict[str, Any] = {"requestId": request_id, "chargingProfile": {}}
    if evse_id is not None:
        payload["evseId"] = evse_id
    return Outbound("GetChargingProfiles", payload, answer_of)
