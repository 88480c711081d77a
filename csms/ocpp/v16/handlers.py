"""OCPP 1.6 charger-initiated actions: convert, call the core, answer. No business rules here."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from csms.core.model import StationInfo
from csms.ocpp.fields import read_timestamp
from csms.ocpp.kept import KEPT_ACTIONS, keep_all
from csms.ocpp.session import Handler, StationSession
from csms.ocpp.v16.convert import id_tag_info, signed_values, to_samples
from ocppj.timestamps import format_datetime
from ocppj.versions import OcppVersion


async def boot_notification(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    info = StationInfo(
        p["chargePointVendor"], p["chargePointModel"],
        p.get("chargePointSerialNumber") or p.get("chargeBoxSerialNumber"), p.get("firmwareVersion"),
    )
    decision = await s.service.boot(s.station_id, OcppVersion.V16, info)
    return {
        "status": "Accepted" if decision.accepted else "Rejected",
        "currentTime": format_datetime(s.service.clock.now()),
        "interval": decision.interval_s,
    }


async def heartbeat(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    return {"currentTime": format_datetime(s.service.seen(s.station_id))}


async def status_notification(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    ts = read_timestamp(p["timestamp"]) if "timestamp" in p else None
    error = p.get("errorCode")
    connector = p["connectorId"]
    s.service.status(
        s.station_id, connector, connector, p["status"], None if error == "NoError" else error, ts
    )
    return {}


async def authorize(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    return {"idTagInfo": id_tag_info(await s.service.authorize(p["idTag"]))}


async def start_transaction(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    tx, auth = await s.service.start_transaction(
        s.station_id, connector_id=p["connectorId"], id_tag=p["idTag"],
        meter_start_wh=float(p["meterStart"]), ts=read_timestamp(p["timestamp"]),
    )
    if "reservationId" in p:
        s.service.reservation_used(s.station_id, p["reservationId"], tx.tx_id)
    return {"transactionId": int(tx.tx_id), "idTagInfo": id_tag_info(auth)}


async def stop_transaction(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    tx_id = str(p["transactionId"])
    data = p.get("transactionData", [])
    # kept before the stop commits: a retried stop may repeat them, never lose them
    signed = signed_values(s.station_id, tx_id, s.service.clock.now(), data)
    await s.service.keep_signed(signed)
    result, auth = await s.service.stop_transaction(
        s.station_id, tx_id, meter_stop_wh=float(p["meterStop"]), ts=read_timestamp(p["timestamp"]),
        reason=p.get("reason", "Local"), id_tag=p.get("idTag"),
    )
    kept_as = result.transaction.tx_id
    if signed and kept_as != tx_id:  # a stop of an unknown transaction is kept under its own id
        await s.service.keep_signed([replace(v, tx_id=kept_as) for v in signed])
    connector = result.transaction.connector_id
    s.service.meter(to_samples(s.station_id, connector, tx_id, data))
    return {"idTagInfo": id_tag_info(auth)} if auth is not None else {}


async def meter_values(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    tx = p.get("transactionId")
    tx_id = None if tx is None else str(tx)
    meter_value = p["meterValue"]
    if tx_id is not None:
        s.service.keep_signed_later(signed_values(s.station_id, tx_id, s.service.clock.now(), meter_value))
    s.service.meter(to_samples(s.station_id, p["connectorId"], tx_id, meter_value))
    return {}


async def data_transfer(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    s.log.info("data transfer", vendor_id=p["vendorId"], message_id=p.get("messageId"))
    return {"status": "UnknownVendorId"}


async def acknowledge(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    """A notification kept as a station event (see ``keep_all``) and answered with nothing."""
    return {}


async def security_event_notification(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    await s.service.security_event(s.station_id, p["type"], read_timestamp(p["timestamp"]), p.get("techInfo"))
    return {}


HANDLERS: dict[str, Handler] = keep_all({
    "BootNotification": boot_notification,
    "Heartbeat": heartbeat,
    "StatusNotification": status_notification,
    "Authorize": authorize,
    "StartTransaction": start_transaction,
    "StopTransaction": stop_transaction,
    "MeterValues": meter_values,
    "DataTransfer": data_transfer,
    "DiagnosticsStatusNotification": acknowledge,
    "FirmwareStatusNotification": acknowledge,
    # OCPP 1.6 security whitepaper extensions
    "SecurityEventNotification": security_event_notification,
    "LogStatusNotification": acknowledge,
    "SignedFirmwareStatusNotification": acknowledge,
}, KEPT_ACTIONS)
