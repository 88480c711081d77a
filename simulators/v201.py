"""OCPP 2.0.1 for the virtual charger: outgoing payloads and the CSMS-initiated calls it serves."""

from __future__ import annotations

from typing import Any

from ocppj.timestamps import format_datetime
from ocppj.versions import OcppVersion
from simulators import display, local_list, logs_upload, monitoring, profile_reports
from simulators.configuration import variable_status
from simulators.dialect import (
    METER_CONTEXT,
    Build,
    OnAnswer,
    in_use,
    parse_positive_int,
    sampled_values,
    seconds,
    sign_v201,
)
from simulators.firmware import serve_update_v201
from simulators.link import Served
from simulators.model import ChargerOps, EvseState, Sample, Status, StopReason, Tx
from simulators.profiles import ProfileRejected
from simulators.reservations import cancel_reservation, reserve_now_v201
from simulators.serving import (
    Handler,
    clear_profile,
    composite,
    fixed,
    install_profile,
    serve,
    start_profile,
    trigger,
    trigger_meter,
    trigger_targets,
)

# StopReason -> (triggerReason, stoppedReason)
_ENDED = {
    StopReason.LOCAL: ("StopAuthorized", "Local"),
    StopReason.REMOTE: ("RemoteStop", "Remote"),
    StopReason.EV_DISCONNECTED: ("EVDeparted", "EVDisconnected"),
    StopReason.DEAUTHORIZED: ("Deauthorized", "DeAuthorized"),
    StopReason.SOFT_RESET: ("ResetCommand", "ImmediateReset"),
    StopReason.HARD_RESET: ("ResetCommand", "ImmediateReset"),
    StopReason.UNLOCK: ("UnlockCommand", "Other"),
    StopReason.OTHER: ("AbnormalCondition", "Other"),
    StopReason.POWER_LOSS: ("AbnormalCondition", "PowerLoss"),
}
_CHARGING_STATE = {
    Status.CHARGING: "Charging",
    Status.SUSPENDED_EV: "SuspendedEV",
    Status.SUSPENDED_EVSE: "SuspendedEVSE",
    Status.PREPARING: "EVConnected",
    Status.FINISHING: "EVConnected",
}


def connector_status(status: Status) -> str:
    """1.6-style status as a 2.0.1 connectorStatus."""
    if in_use(status):
        return "Occupied"
    return status.value


def _profile_tx_id(tx: Tx) -> str:
    """What 2.0.1 TxProfiles name a transaction by: the station's own transaction id."""
    return tx.local_id


def _token(id_tag: str, remote: bool) -> dict[str, Any]:
    return {"idToken": id_tag, "type": "Central" if remote else "ISO14443"}


def connector_statuses(first: str, connectors: int) -> list[str]:
    """The status of each connector of an EVSE whose cars use the first: the others are
    Unavailable while it is occupied, and share its Available / Unavailable / Faulted."""
    others = "Unavailable" if first in ("Occupied", "Reserved") else first
    return [first] + [others] * (connectors - 1)


class V201:
    """The OCPP 2.0.1 dialect."""

    version = OcppVersion.V201

    # --- outgoing -----------------------------------------------------------------------
    def boot(self, c: ChargerOps, reason: str) -> dict[str, Any]:
        spec = c.spec
        station: dict[str, Any] = {"model": spec.model[:20], "vendorName": spec.vendor[:50],
                                   "firmwareVersion": spec.firmware_version[:50]}
        if spec.serial_number:
            station["serialNumber"] = spec.serial_number[:25]
        return {"reason": reason, "chargingStation": station}

    def boot_result(self, response: dict[str, Any]) -> tuple[str, int]:
        return str(response["status"]), int(response["interval"])

    def status(self, c: ChargerOps, evse: EvseState) -> list[dict[str, Any]]:
        value = connector_status(evse.status)
        if evse.sent_status == value:
            return []
        evse.sent_status = value
        stamp = format_datetime(c.clock.stamp())
        return [{"timestamp": stamp, "connectorStatus": status, "evseId": evse.id, "connectorId": connector}
                for connector, status in enumerate(connector_statuses(value, len(evse.spec.connectors)), 1)]

    def authorize(self, id_tag: str) -> dict[str, Any]:
        return {"idToken": _token(id_tag, False)}

    def authorized(self, response: dict[str, Any]) -> bool:
        return bool(response["idTokenInfo"]["status"] == "Accepted")

    def _event(
        self, event: str, trigger: str, evse: EvseState, tx: Tx, *, offline: bool,
        info: dict[str, Any], sample: Sample | None = None, context: str = "",
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "eventType": event, "timestamp": format_datetime(sample.ts if sample else tx.started_stamp),
            "triggerReason": trigger, "seqNo": tx.seq_no,
            "transactionInfo": {"transactionId": tx.local_id, **info},
            "evse": {"id": evse.id, "connectorId": 1},
        }
        tx.seq_no += 1
        if offline:
            payload["offline"] = True
        if sample is not None:
            values = sampled_values(sample, context, strings=False)
            if event in ("Started", "Ended"):  # the calibration-law pair: signed start and end readings
                sign_v201(tx, values, sample.register_wh, sample.ts, context)
            payload["meterValue"] = [{"timestamp": format_datetime(sample.ts), "sampledValue": values}]
        return payload

    def tx_started(
        self, c: ChargerOps, evse: EvseState, tx: Tx, sample: Sample, *, offline: bool
    ) -> tuple[str, Build, OnAnswer | None]:
        info: dict[str, Any] = {"chargingState": _CHARGING_STATE.get(tx.charging_state, "Charging")}
        remote = tx.remote_start_id is not None
        if remote:
            info["remoteStartId"] = tx.remote_start_id
        payload = self._event("Started", "RemoteStart" if remote else "Authorized", evse, tx,
                              offline=offline, info=info, sample=sample, context=METER_CONTEXT["begin"])
        payload["timestamp"] = format_datetime(tx.started_stamp)
        payload["idToken"] = _token(tx.id_tag, remote)
        if tx.reservation_id is not None:
            payload["reservationId"] = tx.reservation_id

        def on_answer(response: dict[str, Any]) -> None:
            info = response.get("idTokenInfo")
            if info is not None and info["status"] != "Accepted":
                tx.deauthorized = True

        return "TransactionEvent", lambda: payload, on_answer

    def tx_meter(
        self, evse: EvseState, tx: Tx, sample: Sample, *, offline: bool, trigger: str
    ) -> tuple[str, Build]:
        reason = "Trigger" if trigger == "trigger" else "MeterValuePeriodic"
        info = {"chargingState": _CHARGING_STATE.get(tx.charging_state, "Charging")}
        payload = self._event("Updated", reason, evse, tx, offline=offline, info=info, sample=sample,
                              context=METER_CONTEXT[trigger])
        return "TransactionEvent", lambda: payload

    def tx_state(self, evse: EvseState, tx: Tx, sample: Sample, *, offline: bool) -> tuple[str, Build] | None:
        info = {"chargingState": _CHARGING_STATE.get(tx.charging_state, "Charging")}
        payload = self._event("Updated", "ChargingStateChanged", evse, tx, offline=offline, info=info)
        payload["timestamp"] = format_datetime(sample.ts)
        return "TransactionEvent", lambda: payload

    def tx_ended(
        self, evse: EvseState, tx: Tx, sample: Sample, reason: StopReason, *, offline: bool
    ) -> tuple[str, Build]:
        trigger, stopped = _ENDED[reason]
        info = {"stoppedReason": stopped, "chargingState": "EVConnected" if evse.ev else "Idle"}
        payload = self._event("Ended", trigger, evse, tx, offline=offline, info=info, sample=sample,
                              context=METER_CONTEXT["end"])
        if reason is StopReason.LOCAL:
            payload["idToken"] = _token(tx.id_tag, False)
        return "TransactionEvent", lambda: payload

    def meter(self, evse: EvseState, sample: Sample) -> dict[str, Any]:
        values = [{"timestamp": format_datetime(sample.ts),
                   "sampledValue": sampled_values(sample, METER_CONTEXT["trigger"], strings=False)}]
        return {"evseId": evse.id, "meterValue": values}

    def profile_tx_id(self, tx: Tx) -> str | int | None:
        return _profile_tx_id(tx)

    def serve(self, c: ChargerOps, action: str, payload: dict[str, Any]) -> Served:
        return serve(_HANDLERS, c, action, payload)


# --- CSMS-initiated calls ---------------------------------------------------------------


def _request_start(c: ChargerOps, p: dict[str, Any]) -> Served:
    try:
        profile = start_profile(p)
    except ProfileRejected:
        return Served({"status": "Rejected"})
    evse_id = p.get("evseId")
    if evse_id is not None and evse_id not in c.evses:
        return Served({"status": "Rejected"})
    evse = c.remote_start(evse_id, p["idToken"]["idToken"], remote_start_id=p["remoteStartId"],
                          profile=profile)
    if evse is None:
        return Served({"status": "Rejected"})
    result: dict[str, Any] = {"status": "Accepted"}
    if evse.tx is not None:
        result["transactionId"] = evse.tx.local_id
    return Served(result)


def _request_stop(c: ChargerOps, p: dict[str, Any]) -> Served:
    return Served({"status": "Accepted" if c.remote_stop(p["transactionId"]) else "Rejected"})


def _reset(c: ChargerOps, p: dict[str, Any]) -> Served:
    if "evseId" in p:
        return Served({"status": "Rejected"})
    now = c.reset(hard=p["type"] == "Immediate", when_idle=p["type"] == "OnIdle")
    return Served({"status": "Accepted" if now else "Scheduled"})


def _unlock(c: ChargerOps, p: dict[str, Any]) -> Served:
    evse = c.evses.get(p["evseId"])
    if evse is None or p["connectorId"] != 1:
        return Served({"status": "UnknownConnector"})
    if evse.tx is not None:
        return Served({"status": "OngoingAuthorizedTransaction"})
    return Served({"status": "Unlocked" if c.unlock(evse.id) else "UnlockFailed"})


def _change_availability(c: ChargerOps, p: dict[str, Any]) -> Served:
    evse = p.get("evse") or {}
    evse_id = evse.get("id", 0)
    if evse_id != 0 and (evse_id not in c.evses or evse.get("connectorId", 1) != 1):
        return Served({"status": "Rejected"})
    now = c.change_availability(evse_id, p["operationalStatus"] == "Operative")
    return Served({"status": "Accepted" if now else "Scheduled"})


# --- device model -------------------------------------------------------------------------

_READ_ONLY = "ReadOnly"
_READ_WRITE = "ReadWrite"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _variables(c: ChargerOps) -> dict[tuple[str, str], tuple[str, str, str]]:
    """(component, variable) -> (value, mutability, dataType)."""
    s = c.settings
    table = {
        ("OCPPCommCtrlr", "HeartbeatInterval"): (seconds(s.heartbeat_interval_s), _READ_WRITE, "integer"),
        ("OCPPCommCtrlr", "WebSocketPingInterval"): ("0", _READ_WRITE, "integer"),
        ("SampledDataCtrlr", "TxUpdatedInterval"): (seconds(s.meter_interval_s), _READ_WRITE, "integer"),
        ("SampledDataCtrlr", "TxUpdatedMeasurands"): (
            "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Current.Offered,Voltage,SoC",
            _READ_WRITE, "MemberList"),
        ("AlignedDataCtrlr", "Interval"): ("0", _READ_WRITE, "integer"),
        ("AuthCtrlr", "AuthorizeRemoteStart"): (_bool(s.authorize_remote_start), _READ_WRITE, "boolean"),
        ("AuthCtrlr", "LocalAuthorizeOffline"): (_bool(s.local_authorize_offline), _READ_WRITE, "boolean"),
        ("TxCtrlr", "TxStartPoint"): ("Authorized", _READ_WRITE, "MemberList"),
        ("TxCtrlr", "TxStopPoint"): ("EVConnected,Authorized", _READ_WRITE, "MemberList"),
        ("TxCtrlr", "EVConnectionTimeOut"): ("60", _READ_WRITE, "integer"),
        ("SmartChargingCtrlr", "Enabled"): ("true", _READ_ONLY, "boolean"),
        ("SmartChargingCtrlr", "RateUnit"): ("A,W", _READ_ONLY, "MemberList"),
        ("SmartChargingCtrlr", "PeriodsPerSchedule"): ("24", _READ_ONLY, "integer"),
        ("SmartChargingCtrlr", "ProfileStackLevel"): ("10", _READ_ONLY, "integer"),
        ("ChargingStation", "VendorName"): (c.spec.vendor, _READ_ONLY, "string"),
        ("ChargingStation", "Model"): (c.spec.model, _READ_ONLY, "string"),
        ("ChargingStation", "AvailabilityState"): (
            "Available" if all(e.operative for e in c.evses.values()) else "Unavailable",
            _READ_ONLY, "OptionList"),
        **local_list.variables_v201(c),
    }
    for key, value in s.extra.items():
        component, _, variable = key.partition("/")
        if (component, variable) in table:
            _, mutability, kind = table[(component, variable)]
            table[(component, variable)] = (value, mutability, kind)
    return table


def _lookup(c: ChargerOps, item: dict[str, Any]) -> tuple[str, tuple[str, str, str] | None]:
    """(status if unknown, entry) for a component/variable pair."""
    table = _variables(c)
    key = (item["component"]["name"], item["variable"]["name"])
    if key in table:
        return "Accepted", table[key]
    if any(component == key[0] for component, _ in table):
        return "UnknownVariable", None
    return "UnknownComponent", None


def _get_variables(c: ChargerOps, p: dict[str, Any]) -> Served:
    results = []
    for item in p["getVariableData"]:
        result: dict[str, Any] = {"component": item["component"], "variable": item["variable"]}
        status, entry = _lookup(c, item)
        if item.get("attributeType", "Actual") != "Actual" and entry is not None:
            status, entry = "NotSupportedAttributeType", None
        result["attributeStatus"] = status
        if entry is not None:
            result["attributeValue"] = entry[0]
            result["attributeType"] = "Actual"
        results.append(result)
    return Served({"getVariableResult": results})


def _set_variables(c: ChargerOps, p: dict[str, Any]) -> Served:
    results = []
    for item in p["setVariableData"]:
        status, entry = _lookup(c, item)
        if entry is not None:
            status = _apply_variable(c, item, entry)
        results.append({"attributeStatus": status, "component": item["component"],
                        "variable": item["variable"]})
    return Served({"setVariableResult": results})


def _apply_variable(c: ChargerOps, item: dict[str, Any], entry: tuple[str, str, str]) -> str:
    if item.get("attributeType", "Actual") != "Actual":
        return "NotSupportedAttributeType"
    _, mutability, kind = entry
    value = str(item["attributeValue"])
    if mutability == _READ_ONLY:
        return "Rejected"
    name = (item["component"]["name"], item["variable"]["name"])
    if kind == "integer":
        number = parse_positive_int(value)
        if number is None and value != "0":
            return "Rejected"
        if name == ("OCPPCommCtrlr", "HeartbeatInterval") and number:
            c.settings.heartbeat_interval_s = number
            return "Accepted"
        if name == ("SampledDataCtrlr", "TxUpdatedInterval") and number:
            c.settings.meter_interval_s = number
            return "Accepted"
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            return "Rejected"
        if name == ("AuthCtrlr", "AuthorizeRemoteStart"):
            c.settings.authorize_remote_start = value.lower() == "true"
        elif name == ("AuthCtrlr", "LocalAuthorizeOffline"):
            c.settings.local_authorize_offline = value.lower() == "true"
    c.settings.extra["/".join(name)] = value
    return variable_status(*name)


def _get_base_report(c: ChargerOps, p: dict[str, Any]) -> Served:
    def report() -> None:
        data = [
            {"component": {"name": comp}, "variable": {"name": var},
             "variableAttribute": [{"type": "Actual", "value": value, "mutability": mutability}],
             "variableCharacteristics": {"dataType": kind, "supportsMonitoring": False}}
            for (comp, var), (value, mutability, kind) in _variables(c).items()
        ]
        payload = {"requestId": p["requestId"], "generatedAt": format_datetime(c.clock.stamp()), "seqNo": 0,
                   "tbc": False, "reportData": data}
        c.enqueue("NotifyReport", lambda: payload)
    return Served({"status": "Accepted"}, report)


# --- trigger, smart charging, firmware, logs ------------------------------------------------


_IDLE_NOTIFICATIONS = ("FirmwareStatusNotification", "LogStatusNotification")


def _trigger(c: ChargerOps, p: dict[str, Any]) -> Served:
    message = p["requestedMessage"]
    targets = trigger_targets(c, (p.get("evse") or {}).get("id"))
    if targets is None or (message == "BootNotification" and c.accepted):
        return Served({"status": "Rejected"})
    if message == "MeterValues":
        return trigger_meter(c, targets, transaction_event=False)
    if message == "TransactionEvent":
        return trigger_meter(c, [e for e in targets if e.tx is not None], transaction_event=True)
    return trigger(c, message, targets, _IDLE_NOTIFICATIONS)


def _set_profile(c: ChargerOps, p: dict[str, Any]) -> Served:
    refused = install_profile(c, p, _profile_tx_id)
    if refused is None:
        return Served({"status": "Accepted"})
    info = {"reasonCode": refused.reason}
    if refused.detail is not None:
        info["additionalInfo"] = refused.detail[:512]
    return Served({"status": "Rejected", "statusInfo": info})


def _composite(c: ChargerOps, p: dict[str, Any]) -> Served:
    found = composite(c, p)
    if found is None:
        return Served({"status": "Rejected"})
    return Served({"status": "Accepted", "schedule": found[1].schedule_v201()})


def _data_transfer(c: ChargerOps, p: dict[str, Any]) -> Served:
    if p["vendorId"] != c.spec.vendor:
        return Served({"status": "UnknownVendorId"})
    result: dict[str, Any] = {"status": "Accepted"}
    if "data" in p:
        result["data"] = p["data"]
    return Served(result)




def _transaction_status(c: ChargerOps, p: dict[str, Any]) -> Served:
    result: dict[str, Any] = {"messagesInQueue": False}
    tx_id = p.get("transactionId")
    if tx_id is not None:
        result["ongoingIndicator"] = any(e.tx is not None and e.tx.local_id == tx_id
                                         for e in c.evses.values())
    return Served(result)


def _cost_updated(c: ChargerOps, p: dict[str, Any]) -> Served:
    """The running cost the CSMS computed: kept on the session (a display would show it)."""
    for evse in c.evses.values():
        if evse.tx is not None and evse.tx.local_id == p["transactionId"]:
            evse.tx.total_cost = float(p["totalCost"])
    return Served({})


_HANDLERS: dict[str, Handler] = {
    "CostUpdated": _cost_updated,
    "RequestStartTransaction": _request_start,
    "RequestStopTransaction": _request_stop,
    "Reset": _reset,
    "UnlockConnector": _unlock,
    "ChangeAvailability": _change_availability,
    "GetVariables": _get_variables,
    "SetVariables": _set_variables,
    "GetBaseReport": _get_base_report,
    "TriggerMessage": _trigger,
    "SetChargingProfile": _set_profile,
    "ClearChargingProfile": clear_profile,
    "GetCompositeSchedule": _composite,
    "DataTransfer": _data_transfer,
    "UpdateFirmware": serve_update_v201,
    "GetLog": logs_upload.get_log,
    "GetTransactionStatus": _transaction_status,
    "ClearCache": fixed({"status": "Accepted"}),
    "GetLocalListVersion": local_list.get_version_v201,
    "SendLocalList": local_list.send_local_list_v201,
    "ReserveNow": reserve_now_v201,
    "CancelReservation": cancel_reservation,
    **display.HANDLERS,
    **monitoring.HANDLERS,
    **profile_reports.HANDLERS,
}
