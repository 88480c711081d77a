"""Pure builders of OCPP 1.6 CSMS-initiated calls from domain commands, and readers of the answers.

Same function names as ``csms.ocpp.v201.commands`` (see ``csms.ocpp.outbound.CommandSet``).
"""

from __future__ import annotations

from typing import Any

from csms.core.commands import (
    CertificateKind,
    ChargingLimit,
    CommandKind,
    CommandResult,
    CommandStatus,
    ConfigurationKey,
    ConfigurationReport,
    LimitPurpose,
    ResetKind,
)
from csms.ocpp.outbound import Outbound, read_status
from csms.security import passwords
from csms.security.passwords import AUTHORIZATION_KEY

_ACTIONS = {
    CommandKind.REMOTE_START: "RemoteStartTransaction",
    CommandKind.REMOTE_STOP: "RemoteStopTransaction",
    CommandKind.RESET: "Reset",
    CommandKind.UNLOCK: "UnlockConnector",
    CommandKind.CHANGE_AVAILABILITY: "ChangeAvailability",
    CommandKind.TRIGGER_MESSAGE: "TriggerMessage",
    CommandKind.SET_LIMIT: "SetChargingProfile",
    CommandKind.CLEAR_LIMIT: "ClearChargingProfile",
    CommandKind.READ_CONFIGURATION: "GetConfiguration",
    CommandKind.SET_PASSWORD: "ChangeConfiguration",
    CommandKind.INSTALL_CERTIFICATE: "InstallCertificate",
    CommandKind.RENEW_CERTIFICATE: "ExtendedTriggerMessage",
    CommandKind.UPDATE_FIRMWARE: "UpdateFirmware",
    CommandKind.UPLOAD_LOG: "GetDiagnostics",
}
_RESET = {ResetKind.SOFT: "Soft", ResetKind.HARD: "Hard"}
_PURPOSE = {LimitPurpose.TX: "TxProfile", LimitPurpose.TX_DEFAULT: "TxDefaultProfile"}
_CERTIFICATE = {
    CertificateKind.CSMS_ROOT: "CentralSystemRootCertificate",
    CertificateKind.MANUFACTURER_ROOT: "ManufacturerRootCertificate",
}


def action_name(kind: CommandKind) -> str:
    """The 1.6 action that carries ``kind``."""
    return _ACTIONS[kind]


def remote_start(id_tag: str, evse_id: int, remote_start_id: int) -> Outbound[CommandResult]:
    """RemoteStartTransaction on connector ``evse_id`` (1.6 has no remote start id)."""
    return Outbound("RemoteStartTransaction", {"idTag": id_tag, "connectorId": evse_id}, read_status)


def remote_stop(tx_id: str) -> Outbound[CommandResult]:
    if not tx_id.isdigit():
        raise ValueError("an OCPP 1.6 transaction id is a number")
    return Outbound("RemoteStopTransaction", {"transactionId": int(tx_id)}, read_status)


def reset(kind: ResetKind) -> Outbound[CommandResult]:
    return Outbound("Reset", {"type": _RESET[kind]}, read_status)


def unlock(evse_id: int, connector_id: int) -> Outbound[CommandResult]:
    """UnlockConnector: 1.6 numbers connectors only, so ``evse_id`` is the connector."""
    return Outbound("UnlockConnector", {"connectorId": evse_id}, read_status)


def change_availability(operative: bool, evse_id: int) -> Outbound[CommandResult]:
    """ChangeAvailability of connector ``evse_id`` (0: the whole station)."""
    payload = {"connectorId": evse_id, "type": "Operative" if operative else "Inoperative"}
    return Outbound("ChangeAvailability", payload, read_status)


def trigger_message(message: str, evse_id: int | None) -> Outbound[CommandResult]:
    payload: dict[str, Any] = {"requestedMessage": message}
    if evse_id is not None:
        payload["connectorId"] = evse_id
    return Outbound("TriggerMessage", payload, read_status)


def set_limit(evse_id: int, limit: ChargingLimit) -> Outbound[CommandResult]:
    """SetChargingProfile: a Relative profile with one period starting now."""
    period: dict[str, Any] = {"startPeriod": 0, "limit": limit.value}
    if limit.phases is not None:
        period["numberPhases"] = limit.phases
    profile: dict[str, Any] = {
        "chargingProfileId": limit.profile_id, "stackLevel": limit.stack_level,
        "chargingProfilePurpose": _PURPOSE[limit.purpose], "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "A" if limit.amps is not None else "W", "chargingSchedulePeriod": [period],
        },
    }
    if limit.tx_id is not None:
        if not limit.tx_id.isdigit():
            raise ValueError("an OCPP 1.6 transaction id is a number")
        profile["transactionId"] = int(limit.tx_id)
    payload = {"connectorId": evse_id, "csChargingProfiles": profile}
    return Outbound("SetChargingProfile", payload, read_status)


def clear_limit(profile_id: int) -> Outbound[CommandResult]:
    return Outbound("ClearChargingProfile", {"id": profile_id}, read_status)


def read_configuration(request_id: int) -> Outbound[ConfigurationReport]:
    """GetConfiguration of every key (1.6 has no request id)."""
    return Outbound("GetConfiguration", {}, _read_configuration)


def _read_configuration(reply: dict[str, Any]) -> ConfigurationReport:
    listed = reply.get("configurationKey") or []
    keys = tuple(ConfigurationKey(k["key"], k.get("value"), bool(k["readonly"])) for k in listed)
    return ConfigurationReport(CommandStatus.ACCEPTED, keys, tuple(reply.get("unknownKey") or []))


def set_password(password: str) -> Outbound[CommandResult]:
    """ChangeConfiguration of ``AuthorizationKey``: the password's bytes, hex on the wire."""
    payload = {"key": AUTHORIZATION_KEY, "value": passwords.canonical(password).hex()}
    return Outbound("ChangeConfiguration", payload, read_status)


def install_certificate(kind: CertificateKind, pem: str) -> Outbound[CommandResult]:
    cert_type = _CERTIFICATE.get(kind)
    if cert_type is None:
        raise ValueError(f"certificate type {kind.value!r} does not exist in ocpp1.6")
    return Outbound("InstallCertificate", {"certificateType": cert_type, "certificate": pem}, read_status)


def renew_certificate() -> Outbound[CommandResult]:
    """Ask for a SignCertificate now (security extension's ExtendedTriggerMessage)."""
    payload = {"requestedMessage": "SignChargePointCertificate"}
    return Outbound("ExtendedTriggerMessage", payload, read_status)


def update_firmware(location: str, retrieve_at: str, request_id: int) -> Outbound[CommandResult]:
    """UpdateFirmware; its 1.6 answer is empty, so an answer counts as Accepted."""
    payload = {"location": location, "retrieveDate": retrieve_at}
    return Outbound("UpdateFirmware", payload, _answered)


def upload_log(location: str, request_id: int) -> Outbound[CommandResult]:
    """GetDiagnostics; Accepted with the file's name, Rejected when the station has none."""
    return Outbound("GetDiagnostics", {"location": location}, _read_diagnostics)


def _answered(reply: dict[str, Any]) -> CommandResult:
    return CommandResult(CommandStatus.ACCEPTED)


def _read_diagnostics(reply: dict[str, Any]) -> CommandResult:
    name = reply.get("fileName")
    if name is None:
        return CommandResult(CommandStatus.REJECTED, "no diagnostics available")
    return CommandResult(CommandStatus.ACCEPTED, str(name))

