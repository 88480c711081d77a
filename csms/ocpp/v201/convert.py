"""Pure conversions between OCPP 2.0.1 payloads and domain values."""

from __future__ import annotations

from typing import Any

from csms.core.model import AuthResult, Measurand, MeterSample, SampledValue
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


def to_samples(
    station_id: str, evse_id: int, connector_id: int, transaction_id: str | None,
    meter_value: list[dict[str, Any]],
) -> list[MeterSample]:
    """``meterValue`` entries of MeterValues or TransactionEvent as domain samples."""
    samples = []
    for mv in meter_value:
        values = sampled_values(mv.get("sampledValue", []))
        if values:
            samples.append(MeterSample(
                station_id, evse_id, connector_id, read_timestamp(mv["timestamp"]), values, transaction_id
            ))
    return samples


def register_wh(samples: list[MeterSample], prefer_context: str | None = None) -> float | None:
    """The energy register in these samples: the one with ``prefer_context``, else the latest."""
    chosen: float | None = None
    for sample in samples:
        for v in sample.values:
            if v.measurand != Measurand.ENERGY_IMPORT_REGISTER or v.phase is not None:
                continue
            if prefer_context is not None and v.context == prefer_context:
                return v.value
            chosen = v.value
    return chosen
