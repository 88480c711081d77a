"""OCPP 1.6J for the virtual charger: outgoing payloads and the CSMS-initiated calls it serves."""

from __future__ import annotations

from typing import Any

from ocppj.timestamps import format_datetime
from ocppj.versions import OcppVersion
from simulators import local_list, logs_upload
from simulators.configuration import key_status
from simulators.dialect import (
    METER_CONTEXT,
    Build,
    OnAnswer,
    parse_positive_int,
    sampled_values,
    seconds,
    sign_v16,
)
from simulators.firmware import serve_signed_update_v16, serve_update_v16
from simulators.link import Served
from simulators.model import ChargerOps, EvseState, Sample, Status, StopReason, Tx
from simulators.profiles import ProfileRejected
from simulators.reservations import cancel_reservation, reserve_now_v16
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

_STOP_REASON = {reason: reason.value for reason in StopReason}


def _profile_tx_id(tx: Tx) -> int | None:
    """What 1.6 TxProfiles name a transaction by: the CSMS's transaction id."""
    return tx.csms_id


class V16:
    """The OCPP 1.6J dialect."""

    version = OcppVersion.V16

    # --- outgoing -----------------------------------------------------------------------
    def boot(self, c: ChargerOps, reason: str) -> dict[str, Any]:
        spec = c.spec
        return {
            "chargePointVendor": spec.vendor[:20], "chargePointModel": spec.model[:20],
            "chargePointSerialNumber": spec.serial_number[:25], "firmwareVersion": spec.firmware_version[:50],
        }

    def boot_result(self, response: dict[str, Any]) -> tuple[str, int]:
        return str(response["status"]), int(response["interval"])

    def status(self, c: ChargerOps, evse: EvseState) -> list[dict[str, Any]]:
        value = evse.status.value
        if evse.sent_status == value:
            return []
        evse.sent_status = value
        payload: dict[str, Any] = {
            "connectorId": evse.id, "status": value, "timestamp": format_datetime(c.clock.stamp()),
            "errorCode": "GroundFailure" if evse.status is Status.FAULTED else "NoError",
        }
        return [payload]

    def authorize(self, id_tag: str) -> dict[str, Any]:
        return {"idTag": id_tag}

    def authorized(self, response: dict[str, Any]) -> bool:
        return bool(response["idTagInfo"]["status"] == "Accepted")

    def tx_started(
        self, c: ChargerOps, evse: EvseState, tx: Tx, sample: Sample, *, offline: bool
    ) -> tuple[str, Build, OnAnswer | None]:
        payload = {
            "connectorId": evse.id, "idTag": tx.id_tag, "meterStart": int(tx.meter_start_wh),
            "timestamp": format_datetime(tx.started_stamp),
        }
        if tx.reservation_id is not None:
            payload["reservationId"] = tx.reservation_id

        def on_answer(response: dict[str, Any]) -> None:
            tx.csms_id = int(response["transactionId"])
            if response["idTagInfo"]["status"] != "Accepted":
                tx.deauthorized = True

        return "StartTransaction", lambda: payload, on_answer

    def tx_meter(
        self, evse: EvseState, tx: Tx, sample: Sample, *, offline: bool, trigger: str
    ) -> tuple[str, Build]:
        values = [{"timestamp": format_datetime(sample.ts),
                   "sampledValue": sampled_values(sample, METER_CONTEXT[trigger], strings=True)}]

        def build() -> dict[str, Any]:
            payload: dict[str, Any] = {"connectorId": evse.id, "meterValue": values}
            if tx.csms_id is not None:
                payload["transactionId"] = tx.csms_id
            return payload

        return "MeterValues", build

    def tx_state(self, evse: EvseState, tx: Tx, sample: Sample, *, offline: bool) -> tuple[str, Build] | None:
        return None

    def tx_ended(
        self, evse: EvseState, tx: Tx, sample: Sample, reason: StopReason, *, offline: bool
    ) -> tuple[str, Build]:
        end_values = sampled_values(sample, METER_CONTEXT["end"], strings=True)
        data = [{"timestamp": format_datetime(sample.ts), "sampledValue": end_values}]
        begin = sign_v16(tx, tx.meter_start_wh, tx.started_stamp, METER_CONTEXT["begin"])
        if begin is not None:  # the calibration-law pair: the signed start and end readings
            data.insert(0, {"timestamp": format_datetime(tx.started_stamp), "sampledValue": [begin]})
            end = sign_v16(tx, sample.register_wh, sample.ts, METER_CONTEXT["end"])
            assert end is not None
            end_values.append(end)
        payload: dict[str, Any] = {
            "meterStop": int(sample.register_wh), "timestamp": format_datetime(sample.ts),
            "reason": _STOP_REASON[reason], "transactionData": data,
        }
        if reason is StopReason.LOCAL:
            payload["idTag"] = tx.id_tag

        def build() -> dict[str, Any]:
            return {**payload, "transactionId": tx.csms_id if tx.csms_id is not None else -1}

        return "StopTransaction", build

    def meter(self, evse: EvseState, sample: Sample) -> dict[str, Any]:
        values = [{"timestamp": format_datetime(sample.ts),
                   "sampledValue": sampled_values(sample, METER_CONTEXT["trigger"], strings=True)}]
        return {"connectorId": evse.id, "meterValue": values}

    def profile_tx_id(self, tx: Tx) -> str | int | None:
        return _profile_tx_id(tx)

    def serve(self, c: ChargerOps, action: str, payload: dict[str, Any]) -> Served:
        return serve(_HANDLERS, c, action, payload)


# --- CSMS-initiated calls ---------------------------------------------------------------


def _evse(c: ChargerOps, connector_id: int | None) -> EvseState | None:
    return None if connector_id is None else c.evses.get(connector_id)


def _remote_start(c: ChargerOps, p: dict[str, Any]) -> Served:
    try:
        profile = start_profile(p)
    except ProfileRejected:
        return Served({"status": "Rejected"})
    connector = p.get("connectorId")
    if connector is not None and connector not in c.evses:
        return Served({"status": "Rejected"})
    evse = c.remote_start(connector, p["idTag"], profile=profile)
    return Served({"status": "Accepted" if evse is not None else "Rejected"})


def _remote_stop(c: ChargerOps, p: dict[str, Any]) -> Served:
    for evse in c.evses.values():
        if evse.tx is not None and evse.tx.csms_id == p["transactionId"]:
            return Served({"status": "Accepted" if c.remote_stop(evse.tx.local_id) else "Rejected"})
    return Served({"status": "Rejected"})


def _reset(c: ChargerOps, p: dict[str, Any]) -> Served:
    c.reset(hard=p["type"] == "Hard", when_idle=False)
    return Served({"status": "Accepted"})


def _unlock(c: ChargerOps, p: dict[str, Any]) -> Served:
    if p["connectorId"] not in c.evses:
        return Served({"status": "NotSupported"})
    return Served({"status": "Unlocked" if c.unlock(p["connectorId"]) else "UnlockFailed"})


def _change_availability(c: ChargerOps, p: dict[str, Any]) -> Served:
    connector = p["connectorId"]
    if connector != 0 and connector not in c.evses:
        return Served({"status": "Rejected"})
    now = c.change_availability(connector, p["type"] == "Operative")
    return Served({"status": "Accepted" if now else "Scheduled"})


_CONFIG_READONLY = {
    "NumberOfConnectors", "SupportedFeatureProfiles", "ChargeProfileMaxStackLevel",
    "ChargingScheduleAllowedChargingRateUnit", "ChargingScheduleMaxPeriods", "MaxChargingProfilesInstalled",
    "MeterValuesSampledDataMaxLength", "GetConfigurationMaxKeys", *local_list.READONLY_V16,
}


def _config(c: ChargerOps) -> dict[str, str]:
    s = c.settings
    values = {
        "HeartbeatInterval": seconds(s.heartbeat_interval_s),
        "MeterValueSampleInterval": seconds(s.meter_interval_s),
        "MeterValuesSampledData": "Energy.Active.Import.Register,Power.Active.Import,Current.Import,"
                                  "Current.Offered,Voltage,SoC",
        "ClockAlignedDataInterval": "0",
        "ConnectionTimeOut": "60",
        "AuthorizeRemoteTxRequests": str(s.authorize_remote_start).lower(),
        "LocalAuthorizeOffline": str(s.local_authorize_offline).lower(),
        "LocalPreAuthorize": "false",
        "StopTransactionOnEVSideDisconnect": "true",
        "StopTransactionOnInvalidId": "true",
        "TransactionMessageAttempts": "3",
        "TransactionMessageRetryInterval": "10",
        "UnlockConnectorOnEVSideDisconnect": "true",
        "WebSocketPingInterval": "0",
        "NumberOfConnectors": str(len(c.evses)),
        "SupportedFeatureProfiles":
            "Core,FirmwareManagement,LocalAuthListManagement,RemoteTrigger,SmartCharging",
        "ChargeProfileMaxStackLevel": "10",
        "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
        "ChargingScheduleMaxPeriods": "24",
        "MaxChargingProfilesInstalled": "20",
        "MeterValuesSampledDataMaxLength": "8",
        "GetConfigurationMaxKeys": "50",
        **local_list.config_v16(),
    }
    values.update(s.extra)
    return values


def _get_configuration(c: ChargerOps, p: dict[str, Any]) -> Served:
    values = _config(c)
    wanted = p.get("key") or list(values)
    known = [{"key": k, "readonly": k in _CONFIG_READONLY, "value": values[k]} for k in wanted if k in values]
    unknown = [k for k in wanted if k not in values]
    result: dict[str, Any] = {"configurationKey": known}
    if unknown:
        result["unknownKey"] = unknown
    return Served(result)


def _change_configuration(c: ChargerOps, p: dict[str, Any]) -> Served:
    key, value = p["key"], p["value"]
    values = _config(c)
    if key not in values:
        return Served({"status": "NotSupported"})
    if key in _CONFIG_READONLY:
        return Served({"status": "Rejected"})
    if key in ("HeartbeatInterval", "MeterValueSampleInterval"):
        number = parse_positive_int(value)
        if number is None:
            return Served({"status": "Rejected"})
        if key == "HeartbeatInterval":
            c.settings.heartbeat_interval_s = number
        else:
            c.settings.meter_interval_s = number
    elif key == "AuthorizeRemoteTxRequests":
        c.settings.authorize_remote_start = value.lower() == "true"
    elif key == "LocalAuthorizeOffline":
        c.settings.local_authorize_offline = value.lower() == "true"
    else:
        c.settings.extra[key] = value
    return Served({"status": key_status(key)})


_IDLE_NOTIFICATIONS = ("FirmwareStatusNotification", "DiagnosticsStatusNotification")


def _trigger(c: ChargerOps, p: dict[str, Any]) -> Served:
    message = p["requestedMessage"]
    targets = trigger_targets(c, p.get("connectorId"))
    if targets is None:
        return Served({"status": "Rejected"})
    if message == "MeterValues":  # with the transaction's id where one runs
        return trigger_meter(c, targets, transaction_event=True)
    return trigger(c, message, targets, _IDLE_NOTIFICATIONS)


def _set_profile(c: ChargerOps, p: dict[str, Any]) -> Served:
    refused = install_profile(c, p, _profile_tx_id)
    return Served({"status": "Rejected" if refused else "Accepted"})


def _composite(c: ChargerOps, p: dict[str, Any]) -> Served:
    found = composite(c, p)
    if found is None:
        return Served({"status": "Rejected"})
    evse_id, schedule = found
    return Served({
        "status": "Accepted", "connectorId": evse_id, "scheduleStart": format_datetime(schedule.start),
        "chargingSchedule": schedule.charging_schedule_v16(),
    })


def _data_transfer(c: ChargerOps, p: dict[str, Any]) -> Served:
    if p["vendorId"] != c.spec.vendor:
        return Served({"status": "UnknownVendorId"})
    return Served({"status": "Accepted", "data": p.get("data", "")})




_HANDLERS: dict[str, Handler] = {
    "RemoteStartTransaction": _remote_start,
    "RemoteStopTransaction": _remote_stop,
    "Reset": _reset,
    "UnlockConnector": _unlock,
    "ChangeAvailability": _change_availability,
    "GetConfiguration": _get_configuration,
    "ChangeConfiguration": _change_configuration,
    "TriggerMessage": _trigger,
    "SetChargingProfile": _set_profile,
    "ClearChargingProfile": clear_profile,
    "GetCompositeSchedule": _composite,
    "DataTransfer": _data_transfer,
    "UpdateFirmware": serve_update_v16,
    "SignedUpdateFirmware": serve_signed_update_v16,
    "GetDiagnostics": logs_upload.get_diagnostics,
    "GetLog": logs_upload.get_log,  # the security extension
    "ClearCache": fixed({"status": "Accepted"}),
    "GetLocalListVersion": local_list.get_version_v16,
    "SendLocalList": local_list.send_local_list_v16,
    "ReserveNow": reserve_now_v16,
    "CancelReservation": cancel_reservation,
}
