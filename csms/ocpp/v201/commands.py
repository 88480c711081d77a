"""Pure builders of OCPP 2.0.1 CSMS-initiated calls from domain commands, and readers of the answers.

Same function names as ``csms.ocpp.v16.commands`` (see ``csms.ocpp.outbound.CommandSet``).
"""

from __future__ import annotations

from typing import Any

from csms.core.commands import (
    CertificateKind,
    ChargingLimit,
    CommandKind,
    CommandResult,
    ConfigurationReport,
    LimitPurpose,
    ResetKind,
)
from csms.ocpp.outbound import Outbound, detail_of, read_status, status_of
from csms.security.passwords import BASIC_AUTH_PASSWORD

_ACTIONS = {
    CommandKind.REMOTE_START: "RequestStartTransaction",
    CommandKind.REMOTE_STOP: "RequestStopTransaction",
    CommandKind.RESET: "Reset",
    CommandKind.UNLOCK: "UnlockConnector",
    CommandKind.CHANGE_AVAILABILITY: "ChangeAvailability",
    CommandKind.TRIGGER_MESSAGE: "TriggerMessage",
    CommandKind.SET_LIMIT: "SetChargingProfile",
    CommandKind.CLEAR_LIMIT: "ClearChargingProfile",
    CommandKind.READ_CONFIGURATION: "GetBaseReport",
    CommandKind.SET_PASSWORD: "SetVariables",
    CommandKind.INSTALL_CERTIFICATE: "InstallCertificate",
    CommandKind.RENEW_CERTIFICATE: "TriggerMessage",
    CommandKind.UPDATE_FIRMWARE: "UpdateFirmware",
    CommandKind.UPLOAD_LOG: "GetLog",
}
_RESET = {ResetKind.SOFT: "OnIdle", ResetKind.HARD: "Immediate"}
_PURPOSE = {LimitPurpose.TX: "TxProfile", LimitPurpose.TX_DEFAULT: "TxDefaultProfile"}
_CERTIFICATE = {
    CertificateKind.CSMS_ROOT: "CSMSRootCertificate",
    CertificateKind.MANUFACTURER_ROOT: "ManufacturerRootCertificate",
    CertificateKind.V2G_ROOT: "V2GRootCertificate",
    CertificateKind.MO_ROOT: "MORootCertificate",
}


def action_name(kind: CommandKind) -> str:
    """The 2.0.1 action that carries ``kind``."""
    return _ACTIONS[kind]


def remote_start(id_tag: str, evse_id: int, remote_start_id: int) -> Outbound[CommandResult]:
    """RequestStartTransaction with a Central id token."""
    payload = {
        "idToken": {"idToken": id_tag, "type": "Central"}, "evseId": evse_id,
        "remoteStartId": remote_start_id,
    }
    return Outbound("RequestStartTransaction", payload, _read_start)


def _read_start(reply: dict[str, Any]) -> CommandResult:
    result = read_status(reply)
    running = reply.get("transactionId")
    if running is None or result.detail is not None:
        return result
    return CommandResult(result.status, f"transaction {running} already running")


def remote_stop(tx_id: str) -> Outbound[CommandResult]:
    return Outbound("RequestStopTransaction", {"transactionId": tx_id}, read_status)


def reset(kind: ResetKind) -> Outbound[CommandResult]:
    return Outbound("Reset", {"type": _RESET[kind]}, read_status)


def unlock(evse_id: int, connector_id: int) -> Outbound[CommandResult]:
    return Outbound("UnlockConnector", {"evseId": evse_id, "connectorId": connector_id}, read_status)


def change_availability(operative: bool, evse_id: int) -> Outbound[CommandResult]:
    """ChangeAvailability of EVSE ``evse_id`` (0: the whole station)."""
    payload: dict[str, Any] = {"operationalStatus": "Operative" if operative else "Inoperative"}
    if evse_id:
        payload["evse"] = {"id": evse_id}
    return Outbound("ChangeAvailability", payload, read_status)


def trigger_message(message: str, evse_id: int | None) -> Outbound[CommandResult]:
    payload: dict[str, Any] = {"requestedMessage": message}
    if evse_id is not None:
        payload["evse"] = {"id": evse_id}
    return Outbound("TriggerMessage", payload, read_status)


def set_limit(evse_id: int, limit: ChargingLimit) -> Outbound[CommandResult]:
    """SetChargingProfile: a Relative profile with one schedule, one period starting now."""
    period: dict[str, Any] = {"startPeriod": 0, "limit": limit.value}
    if limit.phases is not None:
        period["numberPhases"] = limit.phases
    profile: dict[str, Any] = {
        "id": limit.profile_id, "stackLevel": limit.stack_level,
        "chargingProfilePurpose": _PURPOSE[limit.purpose], "chargingProfileKind": "Relative",
        "chargingSchedule": [{
            "id": limit.profile_id, "chargingRateUnit": "A" if limit.amps is not None else "W",
            "chargingSchedulePeriod": [period],
        }],
    }
    if limit.tx_id is not None:
        profile["transactionId"] = limit.tx_id
    return Outbound("SetChargingProfile", {"evseId": evse_id, "chargingProfile": profile}, read_status)


def clear_limit(profile_id: int) -> Outbound[CommandResult]:
    return Outbound("ClearChargingProfile", {"chargingProfileId": profile_id}, read_status)


def read_configuration(request_id: int) -> Outbound[ConfigurationReport]:
    """GetBaseReport of the configuration inventory; the settings follow in NotifyReport."""
    payload = {"requestId": request_id, "reportBase": "ConfigurationInventory"}
    return Outbound("GetBaseReport", payload, _read_report)


def _read_report(reply: dict[str, Any]) -> ConfigurationReport:
    return ConfigurationReport(read_status(reply).status)


def set_password(password: str) -> Outbound[CommandResult]:
    """SetVariables of ``SecurityCtrlr.BasicAuthPassword``."""
    component, variable = BASIC_AUTH_PASSWORD
    payload = {"setVariableData": [{
        "component": {"name": component}, "variable": {"name": variable}, "attributeValue": password,
    }]}
    return Outbound("SetVariables", payload, _read_set_variable)


def _read_set_variable(reply: dict[str, Any]) -> CommandResult:
    first = (reply.get("setVariableResult") or [{}])[0]
    return CommandResult(status_of(first.get("attributeStatus")), detail_of(first.get("attributeStatusInfo")))


def install_certificate(kind: CertificateKind, pem: str) -> Outbound[CommandResult]:
    payload = {"certificateType": _CERTIFICATE[kind], "certificate": pem}
    return Outbound("InstallCertificate", payload, read_status)


def renew_certificate() -> Outbound[CommandResult]:
    """Ask for a SignCertificate now."""
    return Outbound("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}, read_status)


def update_firmware(location: str, retrieve_at: str, request_id: int) -> Outbound[CommandResult]:
    payload = {"requestId": request_id, "firmware": {"location": location, "retrieveDateTime": retrieve_at}}
    return Outbound("UpdateFirmware", payload, read_status)


def upload_log(location: str, request_id: int) -> Outbound[CommandResult]:
    """GetLog of the diagnostics log; the detail is the file's name when the station gives one."""
    payload = {"logType": "DiagnosticsLog", "requestId": request_id, "log": {"remoteLocation": location}}
    return Outbound("GetLog", payload, _read_log)


def _read_log(reply: dict[str, Any]) -> CommandResult:
    result = read_status(reply)
    name = reply.get("filename")
    return result if name is None or result.detail is not None else CommandResult(result.status, str(name))
