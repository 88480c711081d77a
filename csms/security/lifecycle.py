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

from csms.core.commands import CertificateKind, CommandStatus
from csms.core.ports import StationCommands
from csms.errors import CallErrorReceived, ControlError, StationNotConnected
from csms.security import passwords
from csms.security.passwords import AUTHORIZATION_KEY, BASIC_AUTH_PASSWORD
from csms.security.records import SecurityStore
from ocppj.versions import OcppVersion

REDACTED = "***"
_ALPHABET = string.ascii_letters + string.digits


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


async def rotate_password(
    control: StationCommands, store: SecurityStore, station_id: str, password: str | None = None,
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
        try:
            answer = await control.set_password(station_id, secret, timeout=timeout)
        except CallErrorReceived:
            await store.finish_password_rotation(station_id, accepted=False, pending_hash=pending)
            return RotationResult("CallError", False)
        except ControlError:
            return RotationResult("NoAnswer", False)
        accepted = answer.status in (CommandStatus.ACCEPTED, CommandStatus.REBOOT_REQUIRED)
        await store.finish_password_rotation(station_id, accepted=accepted, pending_hash=pending)
        return RotationResult(answer.status.value, accepted)
    finally:
        _rotating.discard(station_id)


async def install_certificate(
    control: StationCommands, station_id: str, kind: str, pem: str, *, timeout: float | None = None
) -> str:
    """InstallCertificate of a root (``kind``: a ``CertificateKind`` value); returns the station's status.

    Raises StationNotConnected, or ValueError for a kind the station's version does not have.
    """
    answer = await control.install_certificate(station_id, CertificateKind(kind), pem, timeout=timeout)
    return answer.status.value


async def request_new_certificate(
    control: StationCommands, station_id: str, *, timeout: float | None = None
) -> str:
    """Ask the station to send a SignCertificate now (renewal); returns its status."""
    answer = await control.renew_certificate(station_id, timeout=timeout)
    return answer.status.value
