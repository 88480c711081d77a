"""The shape both versions' ``commands`` modules share: a command becomes an ``Outbound`` call
(action, payload, and how to read the answer), pure and testable without a station."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from csms.core.commands import (
    CertificateKind,
    ChargingLimit,
    CommandKind,
    CommandResult,
    CommandStatus,
    ConfigurationReport,
    ResetKind,
)
from csms.errors import ResponseInvalid

R_co = TypeVar("R_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Outbound(Generic[R_co]):
    """One CSMS-initiated call: what to send, and how to turn the answer into a domain result."""

    action: str
    payload: dict[str, Any]
    read: Callable[[dict[str, Any]], R_co]


class CommandSet(Protocol):
    """One OCPP version's builders (``csms.ocpp.v16.commands``, ``csms.ocpp.v201.commands``).

    A builder raises ValueError for a command its version cannot carry; nothing is sent then.
    """

    def action_name(self, kind: CommandKind) -> str: ...
    def remote_start(self, id_tag: str, evse_id: int, remote_start_id: int) -> Outbound[CommandResult]: ...
    def remote_stop(self, tx_id: str) -> Outbound[CommandResult]: ...
    def reset(self, kind: ResetKind) -> Outbound[CommandResult]: ...
    def unlock(self, evse_id: int, connector_id: int) -> Outbound[CommandResult]: ...
    def change_availability(self, operative: bool, evse_id: int) -> Outbound[CommandResult]: ...
    def trigger_message(self, message: str, evse_id: int | None) -> Outbound[CommandResult]: ...
    def set_limit(self, evse_id: int, limit: ChargingLimit) -> Outbound[CommandResult]: ...
    def clear_limit(self, profile_id: int) -> Outbound[CommandResult]: ...
    def read_configuration(self, request_id: int) -> Outbound[ConfigurationReport]: ...
    def set_password(self, password: str) -> Outbound[CommandResult]: ...
    def install_certificate(self, kind: CertificateKind, pem: str) -> Outbound[CommandResult]: ...
    def renew_certificate(self) -> Outbound[CommandResult]: ...
    def update_firmware(
        self, location: str, retrieve_at: str, request_id: int
    ) -> Outbound[CommandResult]: ...
    def upload_log(self, location: str, request_id: int) -> Outbound[CommandResult]: ...


def status_of(word: Any) -> CommandStatus:
    """The domain status for a station's status word (schema-valid answers always have one)."""
    try:
        return CommandStatus(word)
    except ValueError:
        raise ResponseInvalid(f"unexpected status {word!r}") from None


def detail_of(info: Any) -> str | None:
    """``reasonCode`` (and ``additionalInfo``) of a 2.0.1 ``statusInfo``, if any."""
    if not isinstance(info, dict) or "reasonCode" not in info:
        return None
    extra = info.get("additionalInfo")
    return f"{info['reasonCode']}: {extra}" if extra else str(info["reasonCode"])


def read_status(reply: dict[str, Any]) -> CommandResult:
    """The usual answer: ``status`` and, in 2.0.1, an optional ``statusInfo``."""
    return CommandResult(status_of(reply.get("status")), detail_of(reply.get("statusInfo")))
