"""Pure conversions between OCPP 2.0.1 payloads and domain values."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from csms.core.device_report import Attribute, Component, ReportedVariable, Variable
from csms.core.ev_needs import EvNeeds
from csms.core.model import AuthResult, Measurand, MeterReading, MeterSample, SampledValue
from csms.core.station_events import SignedMeterValue
from csms.ocpp.fields import read_timestamp
from csms.ocpp.meter import RESOLVED, new_tuple, resolve, scale
from ocppj.timestamps import format_datetime

_NO_UNIT: dict[str, Any] = {}


def id_token_info(auth: AuthResult) -> dict[str, Any]:
    """The 2.0.1 ``idTokenInfo`` object (unknown tokens are ``Unknown``)."""
    info: dict[str, Any] = {"status": auth.status.value}
    if auth.expiry is not None:
        info["cacheExpiryDateTime"] = format_datetime(auth.expiry)
    if auth.parent is not None:
        info["groupIdToken"] = {"idToken": auth.parent, "type": "Central"}
    return info


def sampled_values(raw: list[dict[str, Any]]) -> tuple[SampledValue, ...]:
    """The readings of one ``meterValue`` entry in SI units (``unitOfMeasure`` and its multiplier applied)."""
    out: list[SampledValue] = []
    for sv in raw:
        get = sv.get
        uom = get("unitOfMeasure") or _NO_UNIT
        key = (get("measurand"), uom.get("unit"))
        measurand, unit, factor = RESOLVED.get(key) or resolve(*key)
        value = float(sv["value"]) * factor
        multiplier = uom.get("multiplier")
        if multiplier:
            value *= scale(int(multiplier))
        out.append(new_tuple(SampledValue, (
            measurand, value, unit, get("phase"), get("context"), get("location"))))
    return tuple(out)


def to_readings(meter_value: list[dict[str, Any]]) -> list[MeterReading]:
    """``meterValue`` entries of MeterValues or TransactionEvent (those with a value we read)."""
    out = []
    for mv in meter_value:
        values = sampled_values(mv.get("sampledValue", []))
        if values:
            out.append(new_tuple(MeterReading, (read_timestamp(mv["timestamp"]), values)))
    return out


def to_samples(
    station_id: str, evse_id: int, connector_id: int, transaction_id: str | None,
    meter_value: list[dict[str, Any]],
) -> list[MeterSample]:
    """``meterValue`` entries as domain samples of one EVSE."""
    return [
        MeterSample(station_id, evse_id, connector_id, ts, values, transaction_id)
        for ts, values in to_readings(meter_value)
    ]


def register_wh(
    samples: Sequence[MeterSample] | Sequence[MeterReading], prefer_context: str | None = None
) -> float | None:
    """The energy register in these readings: the one with ``prefer_context``, else the latest."""
    chosen: float | None = None
    for sample in samples:
        for v in sample.values:
            if v.measurand != Measurand.ENERGY_IMPORT_REGISTER or v.phase is not None:
                continue
            if prefer_context is not None and v.context == prefer_context:
                return v.value
            chosen = v.value
    return chosen


def component(raw: dict[str, Any]) -> Component:
    """A ``ComponentType`` object."""
    evse = raw.get("evse")
    evse_id = connector_id = None
    if isinstance(evse, dict) and "id" in evse:
        evse_id, connector_id = evse["id"], evse.get("connectorId")
    return Component(raw.get("name", ""), raw.get("instance"), evse_id, connector_id)


def variable(raw: dict[str, Any]) -> Variable:
    """A ``VariableType`` object."""
    return Variable(raw.get("name", ""), raw.get("instance"))


def reported_variables(report_data: list[dict[str, Any]]) -> list[ReportedVariable]:
    """NotifyReport's ``reportData`` as domain records (attribute values as text)."""
    return [
        ReportedVariable(
            component(item.get("component", {})), variable(item.get("variable", {})),
            tuple(
                Attribute(attr.get("type", "Actual"), str(attr["value"]) if "value" in attr else None)
                for attr in item.get("variableAttribute", [])
            ),
        )
        for item in report_data
    ]


def signed_values(
    station_id: str, tx_id: str, at: datetime, meter_value: list[dict[str, Any]]
) -> list[SignedMeterValue]:
    """The ``signedMeterValue`` of each sampled value in ``meterValue``, kept as sent."""
    out = []
    for mv in meter_value:
        station_time: datetime | None = None
        for sv in mv.get("sampledValue", []):
            signed = sv.get("signedMeterValue")
            if signed is None:
                continue
            if station_time is None:
                station_time = read_timestamp(mv["timestamp"])
            out.append(SignedMeterValue(
                station_id, tx_id, at, station_time, sv.get("context"), sv.get("measurand"),
                signed["encodingMethod"], signed["signingMethod"], signed.get("publicKey"),
                signed["signedMeterData"],
            ))
    return out


def ev_needs(station_id: str, evse_id: int, needs: dict[str, Any]) -> EvNeeds:
    """NotifyEVChargingNeeds' ``chargingNeeds``: departure, energy (Wh) and the EV's most current (A)."""
    ac = needs.get("acChargingParameters") or {}
    dc = needs.get("dcChargingParameters") or {}
    departure = needs.get("departureTime")
    energy = ac.get("energyAmount", dc.get("energyAmount"))
    current = ac.get("evMaxCurrent", dc.get("evMaxCurrent"))
    return EvNeeds(
        station_id, evse_id, None if departure is None else read_timestamp(departure),
        None if energy is None else float(energy), None if current is None else float(current),
    )
