"""Password and certificate lifecycle, in the station's own protocol version.

Password rotation is two-phase so no outcome locks a station out: the new hash is stored
as *pending* first (the station may log in with either), then the station is asked
(1.6 ChangeConfiguration ``AuthorizationKey``, hex on the wire; 2.0.1 SetVariables
``SecurityCtrlr.BasicAuthPassword``). Accepted (or RebootRequired): the pending hash becomes
the password. Rejected or a CALLERROR: it is dropped. No answer: it stays pending until the
station logs in with it (then it is promoted) or the operator tries again.

A password the CSMS generates (``new_password``) is stored with the fast salted SHA-256 scheme
(``passwords.hash_generated_password``), so a reconnect storm after a restart does not pay
scrypt for it; a password the operator supplies keeps scrypt.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import string
from dataclasses import dataclass
from typing import Any

from csms.core.ports import ChargerControl
from csms.errors import CallErrorReceived, ControlError, StationNotConnected
from csms.ocpp import passwords
from csms.security.records import SecurityStore
from ocppj.versions import OcppVersion

AUTHORIZATION_KEY = "AuthorizationKey"
BASIC_AUTH_PASSWORD = ("SecurityCtrlr", "BasicAuthPassword")
REDACTED = "***"
_ALPHABET = string.ascii_letters + string.digits

INSTALL_TYPES: dict[str, dict[OcppVersion, str]] = {
    "csms_root": {OcppVersion.V16: "CentralSystemRootCertificate", OcppVersion.V201: "CSMSRootCertificate"},
    "manufacturer_root": {
        OcppVersion.V16: "ManufacturerRootCertificate", OcppVersion.V201: "ManufacturerRootCertificate",
    },
    "v2g_root": {OcppVersion.V201: "V2GRootCertificate"},
    "mo_root": {OcppVersion.V201: "MORootCertificate"},
}


class RotationInProgress(Exception):
    """Another rotation of this station's password has not finished yet."""


_rotating: set[str] = set()  # station ids; rotations never overlap, or a lost answer could lock one out


@dataclass(frozen=True, slots=True)
class RotationResult:
    status: str  # the station's answer, "CallError" or "NoAnswer"
    switched: bool  # the stored password is now the new one


def _is_password_variable(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and (item.get("component") or {}).get("name") == BASIC_AUTH_PASSWORD[0]
        and (item.get("variable") or {}).get("name") == BASIC_AUTH_PASSWORD[1]
    )


def sets_password(action: str, payload: dict[str, Any]) -> bool:
    """True for a CALL that would set a station's password behind the CSMS's back."""
    if action == "ChangeConfiguration":
        return payload.get("key") == AUTHORIZATION_KEY
    if action == "SetVariables":
        return any(_is_password_variable(i) for i in payload.get("setVariableData") or [])
    return False


def redact(action: str, payload: Any) -> Any:
    """``payload`` with password values replaced, for logs, the bus and the console."""
    if not isinstance(payload, dict) or not sets_password(action, payload):
        return payload
    clean = copy.deepcopy(payload)
    if action == "ChangeConfiguration":
        clean["value"] = REDACTED
    else:
        for item in clean["setVariableData"]:
            if _is_password_variable(item):
                item["attributeValue"] = REDACTED
    return clean


def new_password(version: OcppVersion) -> str:
    """A random password: 20 bytes as 40 hex digits for 1.6, 32 alphanumerics for 2.0.1."""
    if version is OcppVersion.V16:
        return secrets.token_hex(20)
    return "".join(secrets.choice(_ALPHABET) for _ in range(32))


def check_password(version: OcppVersion, password: str) -> None:
    """Raise ValueError when ``password`` cannot be this version's station password."""
    if version is OcppVersion.V16:
        if not 16 <= len(passwords.canonical(password)) <= 20:
            raise ValueError("a 1.6 AuthorizationKey is 16-20 bytes (or 32-40 hex digits)")
    elif not 16 <= len(password) <= 40:
        raise ValueError("a 2.0.1 BasicAuthPassword is 16-40 characters")


def _password_call(version: OcppVersion, password: str) -> tuple[str, dict[str, Any]]:
    if version is OcppVersion.V16:
        return "ChangeConfiguration", {"key": AUTHORIZATION_KEY, "value": passwords.canonical(password).hex()}
    component, variable = BASIC_AUTH_PASSWORD
    return "SetVariables", {"setVariableData": [{
        "component": {"name": component}, "variable": {"name": variable}, "attributeValue": password,
    }]}


def _answer_status(version: OcppVersion, response: dict[str, Any]) -> str:
    if version is OcppVersion.V16:
        return str(response.get("status", "?"))
    results = response.get("setVariableResult") or [{}]
    return str(results[0].get("attributeStatus", "?"))


async def rotate_password(
    control: ChargerControl, store: SecurityStore, station_id: str, password: str | None = None,
    *, timeout: float | None = None,
) -> RotationResult:
    """Give a connected station a new password; the stored one switches only if it accepts.

    Raises StationNotConnected, RotationInProgress, or ValueError for a password the version
    cannot carry.
    """
    version = control.protocol_of(station_id)
    if version is None:
        raise StationNotConnected(f"station {station_id!r} is not connected")
    secret = password if password is not None else new_password(version)
    check_password(version, secret)
    if station_id in _rotating:
        raise RotationInProgress(f"a password rotation of {station_id!r} is in progress")
    _rotating.add(station_id)
    try:
        if password is None:  # generated here, 160+ random bits: a fast salted hash suffices
            pending = passwords.hash_generated_password(secret)
        else:  # chosen by a person: may be guessable, keep the slow hash
            pending = await asyncio.to_thread(passwords.hash_password, secret)
        await store.set_pending_password(station_id, pending)
        action, payload = _password_call(version, secret)
        try:
            response = await control.call(station_id, action, payload, timeout=timeout)
        except CallErrorReceived:
            await store.finish_password_rotation(station_id, accepted=False, pending_hash=pending)
            return RotationResult("CallError", False)
        except ControlError:
            return RotationResult("NoAnswer", False)
        status = _answer_status(version, response)
        accepted = status in ("Accepted", "RebootRequired")
        await store.finish_password_rotation(station_id, accepted=accepted, pending_hash=pending)
        return RotationResult(status, accepted)
    finally:
        _rotating.discard(station_id)


async def install_certificate(
    control: ChargerControl, station_id: str, kind: str, pem: str, *, timeout: float | None = None
) -> str:
    """InstallCertificate of a root (``kind`` from INSTALL_TYPES); returns the station's status."""
    version = control.protocol_of(station_id)
    if version is None:
        raise StationNotConnected(f"station {station_id!r} is not connected")
    cert_type = INSTALL_TYPES.get(kind, {}).get(version)
    if cert_type is None:
        raise ValueError(f"certificate type {kind!r} does not exist in {version.value}")
    response = await control.call(
        station_id, "InstallCertificate", {"certificateType": cert_type, "certificate": pem}, timeout=timeout
    )
    return str(response.get("status", "?"))


async def request_new_certificate(
    control: ChargerControl, station_id: str, *, timeout: float | None = None
) -> str:
    """Ask the station to send a SignCertificate now (renewal); returns its status."""
    version = control.protocol_of(station_id)
    if version is None:
        raise StationNotConnected(f"station {station_id!r} is not connected")
    if version is OcppVersion.V16:
        action, payload = "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}
    else:
        action, payload = "TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}
    response = await control.call(station_id, action, payload, timeout=timeout)
    return str(response.get("status", "?"))
