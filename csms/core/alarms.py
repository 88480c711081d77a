"""Alarms: what went wrong at a charger, as plain data and pure rules.

The rules turn domain events (and, for ``station_offline``, a periodic look at the live
stations' ``last_seen_at``) into ``Raise`` / ``Clear`` decisions. ``AlarmBook`` keeps the
active alarms and drops decisions that change nothing: one active alarm per
``(charger_id, kind, subject)`` (``subject`` narrows it, e.g. ``"1/2"`` for EVSE 1 connector 2).

An alarm is *active* until cleared. Kinds in ``ACK_ONLY`` have no automatic clear: their
acknowledgement ends them (``acknowledge`` sets ``cleared_at`` too).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from csms.core.events import (
    ClockOffsetMeasured,
    CommandFailed,
    Event,
    LocalListSynced,
    SecurityEventReported,
    StationReported,
    StatusChanged,
    TransactionEnded,
    TransactionStarted,
)
from csms.core.transactions import (
    METER_BACKWARDS,
    METER_STOP_MISSING,
    SEQ_GAP,
    SEQ_OUT_OF_ORDER,
    STOP_BEFORE_START,
)


class Kind(enum.StrEnum):
    STATION_OFFLINE = "station_offline"
    CONNECTOR_FAULTED = "connector_faulted"
    SECURITY_EVENT = "security_event"
    FIRMWARE_FAILED = "firmware_failed"
    LOG_UPLOAD_FAILED = "log_upload_failed"
    CLOCK_OFFSET = "clock_offset"
    METER_ANOMALY = "meter_anomaly"
    COMMAND_UNANSWERED = "command_unanswered"
    LOCAL_LIST_OUT_OF_SYNC = "local_list_out_of_sync"


class Severity(enum.StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    WARNING = "warning"


class State(enum.StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


SEVERITY: dict[Kind, Severity] = {
    Kind.STATION_OFFLINE: Severity.MAJOR,
    Kind.CONNECTOR_FAULTED: Severity.MAJOR,
    Kind.SECURITY_EVENT: Severity.CRITICAL,
    Kind.FIRMWARE_FAILED: Severity.MAJOR,
    Kind.LOG_UPLOAD_FAILED: Severity.WARNING,
    Kind.CLOCK_OFFSET: Severity.WARNING,
    Kind.METER_ANOMALY: Severity.WARNING,
    Kind.COMMAND_UNANSWERED: Severity.WARNING,
    Kind.LOCAL_LIST_OUT_OF_SYNC: Severity.WARNING,
}

ACK_ONLY = frozenset({Kind.SECURITY_EVENT, Kind.METER_ANOMALY, Kind.COMMAND_UNANSWERED})
"""Kinds no later event clears: an operator's acknowledgement ends them."""

CRITICAL_SECURITY_EVENTS = frozenset({
    # tampering, signature and certificate failures and TLS downgrades (OCPP 2.0.1 Security Events,
    # 1.6 security whitepaper); routine ones (StartupOfTheDevice, ResetOrReboot, ...) stay in the log
    "FirmwareTamperDetected",
    "TamperDetectionActivated",
    "InvalidFirmwareSignature",
    "InvalidFirmwareSigningCertificate",
    "InvalidCentralSystemCertificate",
    "InvalidCsmsCertificate",
    "InvalidChargePointCertificate",
    "InvalidChargingStationCertificate",
    "InvalidTLSVersion",
    "InvalidTLSCipherSuite",
    "AttemptedReplayAttacks",
    "SecurityLogWasCleared",
    "MaintenanceLoginFailed",
    "MemoryExhaustion",
})

FIRMWARE_FAILED = frozenset({
    "DownloadFailed", "InstallationFailed", "InstallVerificationFailed", "InvalidSignature", "SignatureError",
})
FIRMWARE_ACTIONS = frozenset({"FirmwareStatusNotification", "SignedFirmwareStatusNotification"})
LOG_FAILED = frozenset({
    "UploadFailed", "UploadFailure", "BadMessage", "PermissionDenied", "NotSupportedOperation",
})
LOG_ACTIONS = frozenset({"DiagnosticsStatusNotification", "LogStatusNotification"})
METER_FLAGS = frozenset({SEQ_GAP, SEQ_OUT_OF_ORDER, METER_BACKWARDS, METER_STOP_MISSING, STOP_BEFORE_START})
"""Transaction flags (``csms.core.transactions``) that make a ``meter_anomaly``."""


@dataclass(frozen=True, slots=True)
class AlarmKey:
    charger_id: str
    kind: Kind
    subject: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Alarm:
    id: int
    charger_id: str
    kind: Kind
    severity: Severity
    raised_at: datetime
    detail: str = ""
    subject: str = ""
    cleared_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None

    @property
    def state(self) -> State:
        if self.cleared_at is not None:
            return State.CLEARED
        return State.ACKNOWLEDGED if self.acknowledged_at is not None else State.RAISED

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    @property
    def key(self) -> AlarmKey:
        return AlarmKey(self.charger_id, self.kind, self.subject)


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """One step of an alarm's life, with who made it (``csms`` for the rules)."""

    alarm_id: int
    action: State
    at: datetime
    actor: str


@dataclass(frozen=True, slots=True)
class Raise:
    key: AlarmKey
    detail: str = ""

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.key.kind]


@dataclass(frozen=True, slots=True)
class Clear:
    key: AlarmKey


Decision = Raise | Clear


def acknowledge(alarm: Alarm, at: datetime, actor: str) -> Alarm:
    """``alarm`` acknowledged by ``actor`` (unchanged if already acknowledged); ends ``ACK_ONLY`` kinds."""
    if alarm.acknowledged_at is not None:
        return alarm
    cleared = alarm.cleared_at or (at if alarm.kind in ACK_ONLY else None)
    return replace(alarm, acknowledged_at=at, acknowledged_by=actor, cleared_at=cleared)


# --- rules: event -> decisions -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Thresholds:
    offline_after_s: float
    clock_offset_max_s: float = 300.0


def _status(ev: StatusChanged) -> Iterator[Decision]:
    key = AlarmKey(ev.station_id, Kind.CONNECTOR_FAULTED, f"{ev.evse_id}/{ev.connector_id}")
    if ev.status == "Faulted":
        yield Raise(key, f"EVSE {ev.evse_id} connector {ev.connector_id} faulted ({ev.error_code or '-'})")
    else:
        yield Clear(key)


def _reported(ev: StationReported) -> Iterator[Decision]:
    status = ev.data.get("status")
    if not isinstance(status, str):
        return
    if ev.action in FIRMWARE_ACTIONS:
        key = AlarmKey(ev.station_id, Kind.FIRMWARE_FAILED)
        if status in FIRMWARE_FAILED:
            yield Raise(key, f"{ev.action}: {status}")
        elif status == "Installed":
            yield Clear(key)
    elif ev.action in LOG_ACTIONS:
        key = AlarmKey(ev.station_id, Kind.LOG_UPLOAD_FAILED)
        if status in LOG_FAILED:
            yield Raise(key, f"{ev.action}: {status}")
        elif status == "Uploaded":
            yield Clear(key)


def decide(ev: Event, limits: Thresholds) -> list[Decision]:
    """The decisions one domain event leads to (usually none)."""
    if isinstance(ev, StatusChanged):
        return list(_status(ev))
    if isinstance(ev, StationReported):
        return list(_reported(ev))
    if isinstance(ev, SecurityEventReported):
        if ev.kind in CRITICAL_SECURITY_EVENTS:
            detail = ev.kind + (f": {ev.tech_info}" if ev.tech_info else "")
            return [Raise(AlarmKey(ev.station_id, Kind.SECURITY_EVENT, ev.kind), detail)]
        return []
    if isinstance(ev, ClockOffsetMeasured):
        key = AlarmKey(ev.station_id, Kind.CLOCK_OFFSET)
        if abs(ev.offset_s) > limits.clock_offset_max_s:
            return [Raise(key, f"clock off by {ev.offset_s:+.0f} s")]
        return [Clear(key)]
    if isinstance(ev, TransactionStarted | TransactionEnded):
        tx = ev.transaction
        flags = sorted(METER_FLAGS.intersection(tx.flags))
        if flags:
            key = AlarmKey(ev.station_id, Kind.METER_ANOMALY, tx.tx_id)
            return [Raise(key, f"transaction {tx.tx_id}: {', '.join(flags)}")]
        return []
    if isinstance(ev, CommandFailed):
        key = AlarmKey(ev.station_id, Kind.COMMAND_UNANSWERED, ev.action)
        return [Raise(key, f"{ev.action}: {ev.reason}")]
    if isinstance(ev, LocalListSynced):
        key = AlarmKey(ev.station_id, Kind.LOCAL_LIST_OUT_OF_SYNC)
        return [Clear(key)] if ev.ok else [Raise(key, f"local authorization list out of sync: {ev.detail}")]
    return []


def offline(
    station_id: str, last_seen_at: datetime | None, now: datetime, limits: Thresholds,
    watching_since: datetime | None = None,
) -> Decision | None:
    """``station_offline`` for one station: raise after ``offline_after_s`` without traffic,
    clear once it is seen again; None for a station never seen.

    ``watching_since`` (when the CSMS started) keeps the CSMS's own downtime from counting:
    a station gets ``offline_after_s`` from then to come back before it is called offline.
    """
    if last_seen_at is None:
        return None
    key = AlarmKey(station_id, Kind.STATION_OFFLINE)
    silent_s = (now - last_seen_at).total_seconds()
    if silent_s <= limits.offline_after_s:
        return Clear(key)
    if watching_since is not None and (now - watching_since).total_seconds() <= limits.offline_after_s:
        return None
    return Raise(key, f"no traffic since {last_seen_at.isoformat()} ({silent_s:.0f} s)")


# --- the active alarms ---------------------------------------------------------------------


class AlarmBook:
    """The active alarms by key; ``admit`` keeps only the decisions that change something."""

    def __init__(self, active: Iterable[Alarm] = ()) -> None:
        self.active: dict[AlarmKey, Alarm] = {}
        for alarm in active:
            self.opened(alarm)

    def admit(self, decision: Decision) -> Decision | None:
        """``decision`` if it changes the book: a raise of a new key, a clear of an active one
        (never of an ``ACK_ONLY`` kind)."""
        current = self.active.get(decision.key)
        if isinstance(decision, Raise):
            return decision if current is None else None
        if current is None or current.kind in ACK_ONLY:
            return None
        return decision

    def get(self, key: AlarmKey) -> Alarm | None:
        return self.active.get(key)

    def opened(self, alarm: Alarm) -> None:
        if alarm.active:
            self.active[alarm.key] = alarm

    def changed(self, alarm: Alarm) -> None:
        """Record ``alarm``'s new state (acknowledged stays, cleared leaves)."""
        if alarm.active:
            self.active[alarm.key] = alarm
        elif self.active.get(alarm.key, alarm).id == alarm.id:
            self.active.pop(alarm.key, None)

    def counts(self) -> dict[tuple[Kind, Severity], int]:
        """Active alarms by (kind, severity)."""
        out: dict[tuple[Kind, Severity], int] = {}
        for alarm in self.active.values():
            k = (alarm.kind, alarm.severity)
            out[k] = out.get(k, 0) + 1
        return out


def fields(alarm: Alarm) -> dict[str, object]:
    """``alarm`` as the API, webhook and MQTT name its fields (times left as datetimes)."""
    return {
        "id": alarm.id, "charger_id": alarm.charger_id, "kind": alarm.kind.value,
        "severity": alarm.severity.value, "state": alarm.state.value, "subject": alarm.subject,
        "raised_at": alarm.raised_at, "cleared_at": alarm.cleared_at,
        "acknowledged_at": alarm.acknowledged_at,
        "acknowledged_by": alarm.acknowledged_by, "detail": alarm.detail,
    }
