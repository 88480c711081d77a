"""OCPP 1.6 charging-profile payloads: SetChargingProfile, ClearChargingProfile and
GetCompositeSchedule built from ``csms.profiles.rules`` values, and their answers read back."""

from __future__ import annotations

from typing import Any

from csms.errors import ResponseInvalid
from csms.ocpp.outbound import Outbound
from csms.profiles.rules import Answer, CompositeSchedule, Period, Profile, ProfileInvalid, RateUnit
from ocppj.timestamps import format_datetime, parse_datetime


def _period(p: Period) -> dict[str, Any]:
    out: dict[str, Any] = {"startPeriod": p.start_s, "limit": round(p.limit, 1)}
    if p.number_phases is not None:
        out["numberPhases"] = p.number_phases
    return out


def _answer(reply: dict[str, Any]) -> Answer:
    status = reply.get("status")
    if not isinstance(status, str):
        raise ResponseInvalid("the answer has no status")
    return Answer(status)


def set_profile(profile: Profile) -> Outbound[Answer]:
    """SetChargingProfile on connector ``evse_id``; a TxProfile's transaction id must be a number."""
    schedule: dict[str, Any] = {
        "chargingRateUnit": profile.unit.value,
        "chargingSchedulePeriod": [_period(p) for p in profile.periods],
    }
    if profile.duration_s is not None:
        schedule["duration"] = profile.duration_s
    if profile.start_schedule is not None:
        schedule["startSchedule"] = format_datetime(profile.start_schedule, timespec="seconds")
    if profile.min_rate is not None:
        schedule["minChargingRate"] = round(profile.min_rate, 1)
    body: dict[str, Any] = {
        "chargingProfileId": profile.profile_id, "stackLevel": profile.stack_level,
        "chargingProfilePurpose": profile.purpose.value, "chargingProfileKind": profile.kind.value,
        "chargingSchedule": schedule,
    }
    if profile.recurrency is not None:
        body["recurrencyKind"] = profile.recurrency.value
    if profile.valid_from is not None:
        body["validFrom"] = format_datetime(profile.valid_from, timespec="seconds")
    if profile.valid_to is not None:
        body["validTo"] = format_datetime(profile.valid_to, timespec="seconds")
    if profile.transaction_id is not None:
        if not profile.transaction_id.isascii() or not profile.transaction_id.isdigit():
            raise ProfileInvalid("transaction_id: OCPP 1.6 transaction ids are integers")
        body["transactionId"] = int(profile.transaction_id)
    payload = {"connectorId": profile.evse_id, "csChargingProfiles": body}
    return Outbound("SetChargingProfile", payload, _answer)


def clear_profile(profile_id: int) -> Outbound[Answer]:
    """ClearChargingProfile of one profile (Accepted, or Unknown when the station has none by that id)."""
    return Outbound("ClearChargingProfile", {"id": profile_id}, _answer)


def composite_schedule(evse_id: int, duration_s: int, unit: RateUnit | None) -> Outbound[CompositeSchedule]:
    payload: dict[str, Any] = {"connectorId": evse_id, "duration": duration_s}
    if unit is not None:
        payload["chargingRateUnit"] = unit.value

    def read(reply: dict[str, Any]) -> CompositeSchedule:
        answer = _answer(reply)
        schedule = reply.get("chargingSchedule")
        if not isinstance(schedule, dict):
            return CompositeSchedule(answer, evse_id)
        start = reply.get("scheduleStart") or schedule.get("startSchedule")
        return CompositeSchedule(
            answer, int(reply.get("connectorId", evse_id)),
            parse_datetime(start) if isinstance(start, str) else None,
            schedule.get("duration"), RateUnit(schedule["chargingRateUnit"]),
            tuple(Period(int(p["startPeriod"]), float(p["limit"]), p.get("numberPhases"))
                  for p in schedule["chargingSchedulePeriod"]),
        )

    return Outbound("GetCompositeSchedule", payload, read)
