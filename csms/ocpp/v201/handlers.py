"""OCPP 2.0.1 charger-initiated actions: convert, call the core, answer. No business rules here."""

from __future__ import annotations

from typing import Any

from csms.core.model import StationInfo
from csms.core.ports import TransactionEventRecord
from csms.ocpp.fields import read_timestamp
from csms.ocpp.kept import KEPT_ACTIONS, keep_all
from csms.ocpp.session import Handler, StationSession
from csms.ocpp.v201.convert import (
    ev_needs,
    id_token_info,
    register_wh,
    reported_variables,
    signed_values,
    to_readings,
    to_samples,
)
from ocppj.timestamps import format_datetime
from ocppj.versions import OcppVersion


async def boot_notification(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    cs = p["chargingStation"]
    info = StationInfo(cs["vendorName"], cs["model"], cs.get("serialNumber"), cs.get("firmwareVersion"))
    decision = await s.service.boot(s.station_id, OcppVersion.V201, info)
    return {
        "currentTime": format_datetime(s.service.clock.now()),
        "interval": decision.interval_s,
        "status": "Accepted" if decision.accepted else "Rejected",
    }


async def heartbeat(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    return {"currentTime": format_datetime(s.service.seen(s.station_id))}


async def status_notification(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    s.service.status(
        s.station_id, p["evseId"], p["connectorId"], p["connectorStatus"], None,
        read_timestamp(p["timestamp"]),
    )
    return {}


async def authorize(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    token = p["idToken"]
    if token.get("type") == "NoAuthorization":
        return {"idTokenInfo": {"status": "Accepted"}}
    return {"idTokenInfo": id_token_info(await s.service.authorize(token["idToken"]))}


async def transaction_event(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    info = p["transactionInfo"]
    event_type: str = p["eventType"]
    evse = p.get("evse") or {}
    evse_id = int(evse.get("id", 0))
    meter_value = p.get("meterValue", [])
    readings = to_readings(meter_value)
    signed = signed_values(s.station_id, info["transactionId"], s.service.clock.now(), meter_value)
    if signed:  # kept before the event commits: a retried event may repeat them, never lose them
        await s.service.keep_signed(signed)
    context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(event_type)
    token = p.get("idToken")
    record = TransactionEventRecord(
        station_id=s.station_id, tx_id=info["transactionId"], event_type=event_type, seq_no=int(p["seqNo"]),
        ts=read_timestamp(p["timestamp"]), trigger_reason=p["triggerReason"], evse_id=evse_id,
        connector_id=int(evse.get("connectorId", 1 if evse_id else 0)),
        id_tag=token["idToken"] if token else None, meter_wh=register_wh(readings, context),
        stopped_reason=info.get("stoppedReason"), offline=bool(p.get("offline", False)),
    )
    lookup = token["idToken"] if token is not None and token.get("type") != "NoAuthorization" else None
    result, auth = await s.service.transaction_event(record, readings, id_token=lookup)
    if "reservationId" in p:
        s.service.reservation_used(s.station_id, p["reservationId"], result.transaction.tx_id)
    answer: dict[str, Any] = {}
    if token is not None:
        answer["idTokenInfo"] = id_token_info(auth) if auth is not None else {"status": "Accepted"}
    if event_type == "Ended" and s.service.pricer is not None:
        total = await s.service.total_cost(result.transaction)
        if total is not None:
            answer["totalCost"] = float(total)
    return answer


async def meter_values(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    evse_id = p["evseId"]
    s.service.meter(to_samples(s.station_id, evse_id, 1 if evse_id else 0, None, p["meterValue"]))
    return {}


async def notify_report(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    s.service.device_report(s.station_id, reported_variables(p.get("reportData", [])))
    return {}


async def acknowledge(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    """A notification kept as a station event (see ``keep_all``) and answered with nothing."""
    return {}


async def security_event_notification(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    await s.service.security_event(s.station_id, p["type"], read_timestamp(p["timestamp"]), p.get("techInfo"))
    return {}


async def data_transfer(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    s.log.info("data transfer", vendor_id=p["vendorId"], message_id=p.get("messageId"))
    return {"status": "UnknownVendorId"}


async def notify_ev_charging_needs(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    s.service.ev_needs(ev_needs(s.station_id, p["evseId"], p["chargingNeeds"]))
    return {"status": "Accepted"}


async def notify_ev_charging_schedule(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
    return {"status": "Accepted"}  # the response schema requires a status


HANDLERS: dict[str, Handler] = keep_all({
    "BootNotification": boot_notification,
    "Heartbeat": heartbeat,
    "StatusNotification": status_notification,
    "Authorize": authorize,
    "TransactionEvent": transaction_event,
    "MeterValues": meter_values,
    "NotifyReport": notify_report,
    "NotifyEvent": acknowledge,
    "SecurityEventNotification": security_event_notification,
    "DataTransfer": data_transfer,
    "NotifyEVChargingNeeds": notify_ev_charging_needs,
    "FirmwareStatusNotification": acknowledge,
    "LogStatusNotification": acknowledge,
    "NotifyChargingLimit": acknowledge,
    "ClearedChargingLimit": acknowledge,
    "ReportChargingProfiles": acknowledge,
    "NotifyEVChargingSchedule": notify_ev_charging_schedule,
    "NotifyMonitoringReport": acknowledge,
    "NotifyCustomerInformation": acknowledge,
    "NotifyDisplayMessages": acknowledge,
    "PublishFirmwareStatusNotification": acknowledge,
    "ReservationStatusUpdate": acknowledge,
}, KEPT_ACTIONS)
