"""Pure conversions between OCPP 1.6 payloads and domain values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from csms.core.model import AuthResult, AuthStatus, MeterSample, SampledValue
from csms.core.station_events import SignedMeterValue
from csms.ocpp.fields import read_timestamp
from csms.ocpp.meter import RESOLVED, new_tuple, resolve
from ocppj.timestamps import format_datetime

_STATUS_16 = {
    AuthStatus.ACCEPTED: "Accepted", AuthStatus.BLOCKED: "Blocked", AuthStatus.EXPIRED: "Expired",
    AuthStatus.INVALID: "Invalid", AuthStatus.UNKNOWN: "Invalid",
    AuthStatus.CONCURRENT_TX: "ConcurrentTx",
}


def id_tag_info(auth: AuthResult) -> dict[str, Any]:
    """The 1.6 ``idTagInfo`` object (unknown tags are ``Invalid`` in 1.6)."""
    info: dict[str, Any] = {"status": _STATUS_16[auth.status]}
    if auth.expiry is not None:
        info["expiryDate"] = format_datetime(auth.expiry)
    if auth.parent is not None:
        info["parentIdTag"] = auth.parent
    return info


def sampled_values(raw: list[dict[str, Any]]) -> tuple[SampledValue, ...]:
    """Numeric readings of one ``meterValue`` entry; signed (non-numeric) data is skipped."""
    out: list[SampledValue] = []
    for sv in raw:
        get = sv.get
        if get("format") == "SignedData":
            continue
        try:
            value = float(sv["value"])
        except (TypeError, ValueError):
            continue
        key = (get("measurand"), get("unit"))
        measurand, unit, factor = RESOLVED.get(key) or resolve(*key)  # value * 1.0 is value
        out.append(new_tuple(SampledValue, (
            measurand, value * factor, unit, get("phase"), get("context"), get("location"))))
    return tuple(out)


def to_samples(
    station_id: str, connector_id: int, transaction_id: str | None, meter_value: list[dict[str, Any]]
) -> list[MeterSample]:
    """MeterValues.meterValue (or StopTransaction.transactionData) as domain samples."""
    samples = []
    for mv in meter_value:
        ts: datetime = read_timestamp(mv["timestamp"])
        values = sampled_values(mv.get("sampledValue", []))
        if values:
            samples.append(MeterSample(station_id, connector_id, connector_id, ts, values, transaction_id))
    return samples


def signed_values(
    station_id: str, tx_id: str, at: datetime, meter_value: list[dict[str, Any]]
) -> list[SignedMeterValue]:
    """The ``format: "SignedData"`` readings of ``meterValue`` (or ``transactionData``), kept as sent."""
    out: list[SignedMeterValue] = []
    for mv in meter_value:
        signed = [sv for sv in mv.get("sampledValue", ()) if sv.get("format") == "SignedData"]
        if not signed:
            continue  # the common case: no timestamp to parse
        station_time = read_timestamp(mv["timestamp"])
        out.extend(
            SignedMeterValue(
                station_id, tx_id, at, station_time, sv.get("context"), sv.get("measurand"),
                "SignedData", None, None, str(sv["value"]),
            )
            for sv in signed
        )
    return out
