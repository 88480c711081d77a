"""Commands the CSMS sends to stations, and the stations' answers, in domain terms.

Nothing here knows which OCPP version carries a command: ``csms.ocpp.v16.commands`` and
``csms.ocpp.v201.commands`` turn these values into payloads and read the answers back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class CommandKind(enum.StrEnum):
    """What the CSMS asks of a station; each version names the action that carries it."""

    REMOTE_START = "remote_start"
    REMOTE_STOP = "remote_stop"
    RESET = "reset"
    UNLOCK = "unlock"
    CHANGE_AVAILABILITY = "change_availability"
    TRIGGER_MESSAGE = "trigger_message"
    SET_LIMIT = "set_limit"
    CLEAR_LIMIT = "clear_limit"
    READ_CONFIGURATION = "read_configuration"
    SET_PASSWORD = "set_password"
    INSTALL_CERTIFICATE = "install_certificate"
    RENEW_CERTIFICATE = "renew_certificate"
    UPDATE_FIRMWARE = "update_firmware"
    UPLOAD_LOG = "upload_log"


class CommandStatus(enum.StrEnum):
    """A station's answer to a command, by the word it used (the union of both versions')."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    SCHEDULED = "Scheduled"
    REBOOT_REQUIRED = "RebootRequired"
    NOT_SUPPORTED = "NotSupported"
    NOT_IMPLEMENTED = "NotImplemented"
    UNKNOWN = "Unknown"
    FAILED = "Failed"
    UNLOCKED = "Unlocked"
    UNLOCK_FAILED = "UnlockFailed"
    ONGOING_AUTHORIZED_TRANSACTION = "OngoingAuthorizedTransaction"
    UNKNOWN_CONNECTOR = "UnknownConnector"
    UNKNOWN_COMPONENT = "UnknownComponent"
    UNKNOWN_VARIABLE = "UnknownVariable"
    NOT_SUPPORTED_ATTRIBUTE_TYPE = "NotSupportedAttributeType"
    EMPTY_RESULT_SET = "EmptyResultSet"
    ACCEPTED_CANCELED = "AcceptedCanceled"
    INVALID_CERTIFICATE = "InvalidCertificate"
    REVOKED_CERTIFICATE = "RevokedCertificate"


_DONE_OR_WILL_DO = frozenset({
    CommandStatus.ACCEPTED, CommandStatus.SCHEDULED, CommandStatus.REBOOT_REQUIRED,
    CommandStatus.UNLOCKED, CommandStatus.ACCEPTED_CANCELED,
})


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The station's answer: its status and, when it gave one, why (reason code, text)."""

    status: CommandStatus
    detail: str | None = None

    @property
    def accepted(self) -> bool:
        """The station did it, or will (scheduled, after a reboot, ...)."""
        return self.status in _DONE_OR_WILL_DO


class ResetKind(enum.StrEnum):
    """Soft: restart gracefully (1.6 Soft, 2.0.1 OnIdle). Hard: now (1.6 Hard, 2.0.1 Immediate)."""

    SOFT = "soft"
    HARD = "hard"


OPERATOR_PROFILE_ID = 1000  # the profile of a limit given without an id (the console's)


class LimitPurpose(enum.StrEnum):
    """Which charging profile a limit is: one transaction's, or the EVSE's default for any."""

    TX = "tx"
    TX_DEFAULT = "tx_default"


@dataclass(frozen=True, slots=True)
class ChargingLimit:
    """A cap on one EVSE from now on: amperes per phase or watts (exactly one of them).

    With ``tx_id`` it applies to that transaction (TxProfile); without, it is the EVSE's
    default for every transaction (TxDefaultProfile). ``profile_id`` and ``stack_level``
    say which installed profile it replaces and how it stacks with the station's others.
    """

    amps: float | None = None
    watts: float | None = None
    phases: int | None = None
    tx_id: str | None = None
    profile_id: int = OPERATOR_PROFILE_ID
    stack_level: int = 1

    def __post_init__(self) -> None:
        if (self.amps is None) == (self.watts is None):
            raise ValueError("a charging limit is in amperes or in watts (exactly one)")
        if (self.amps if self.amps is not None else self.watts or 0.0) < 0:
            raise ValueError("a charging limit cannot be negative")

    @property
    def purpose(self) -> LimitPurpose:
        return LimitPurpose.TX if self.tx_id is not None else LimitPurpose.TX_DEFAULT

    @property
    def value(self) -> float:
        """The limit in its unit (A or W), to 0.1."""
        return round(self.amps if self.amps is not None else self.watts or 0.0, 1)


class CertificateKind(enum.StrEnum):
    """Root certificates a station can be given (not every version has every kind)."""

    CSMS_ROOT = "csms_root"
    MANUFACTURER_ROOT = "manufacturer_root"
    V2G_ROOT = "v2g_root"
    MO_ROOT = "mo_root"


@dataclass(frozen=True, slots=True)
class ConfigurationKey:
    """One configuration setting a station reported."""

    key: str
    value: str | None
    readonly: bool


@dataclass(frozen=True, slots=True)
class ConfigurationReport:
    """The answer to a configuration read.

    ``keys`` is None when the settings arrive later in their own messages (2.0.1 reports);
    ``unknown`` lists requested keys the station does not have.
    """

    status: CommandStatus
    keys: tuple[ConfigurationKey, ...] | None = None
    unknown: tuple[str, ...] = ()
