"""The alarm rules and the active-alarm book, fed with domain events and a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from csms.core.alarms import (
    Alarm,
    AlarmBook,
    AlarmKey,
    Clear,
    Decision,
    Kind,
    Raise,
    Severity,
    State,
    Thresholds,
    acknowledge,
    decide,
    offline,
)
from csms.core.events import (
    ClockOffsetMeasured,
    CommandFailed,
    MeterSampled,
    SecurityEventReported,
    StationReported,
    StatusChanged,
    TransactionEnded,
    TransactionStarted,
)
from csms.core.model import MeterSample, Transaction
from csms.core.transactions import METER_BACKWARDS, OFFLINE, SEQ_GAP
from ocppj.versions import OcppVersion

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
LIMITS = Thresholds(offline_after_s=900, clock_offset_max_s=300)


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.t = now

    def now(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def status(value: str, *, evse: int = 1, connector: int = 1, error: str | None = None) -> StatusChanged:
    return StatusChanged(station_id="CP1", evse_id=evse, connector_id=connector, status=value,
                         error_code=error)


def reported(action: str, status_value: str) -> StationReported:
    return StationReported(station_id="CP1", action=action, data={"status": status_value})


def tx(flags: tuple[str, ...]) -> Transaction:
    return Transaction(station_id="CP1", tx_id="T1", evse_id=1, connector_id=1, id_tag=None, started_at=T0,
                       protocol=OcppVersion.V201, flags=flags)


def alarm_of(decision: Raise, alarm_id: int, at: datetime = T0) -> Alarm:
    k = decision.key
    return Alarm(id=alarm_id, charger_id=k.charger_id, kind=k.kind, severity=decision.severity, raised_at=at,
                 detail=decision.detail, subject=k.subject)


def test_a_faulted_connector_raises_a_major_alarm_per_connector_and_a_later_status_clears_it() -> None:
    [raised] = decide(status("Faulted", connector=2, error="GroundFailure"), LIMITS)
    assert isinstance(raised, Raise)
    assert raised.key == AlarmKey("CP1", Kind.CONNECTOR_FAULTED, "1/2")
    assert raised.severity is Severity.MAJOR and "GroundFailure" in raised.detail
    assert decide(status("Available", connector=2), LIMITS) == [Clear(raised.key)]


def test_station_offline_raises_after_the_threshold_and_clears_when_seen_again() -> None:
    clock = FakeClock()
    last_seen = clock.now()
    clock.advance(900)
    assert offline("CP1", last_seen, clock.now(), LIMITS) == Clear(AlarmKey("CP1", Kind.STATION_OFFLINE))
    clock.advance(1)
    found = offline("CP1", last_seen, clock.now(), LIMITS)
    assert isinstance(found, Raise) and found.key.kind is Kind.STATION_OFFLINE
    assert offline("CP1", clock.now(), clock.now(), LIMITS) == Clear(found.key)


def test_the_csms_own_downtime_does_not_count_as_a_station_silence() -> None:
    started = T0 + timedelta(hours=2)  # the CSMS was down; the station was last seen before that
    assert offline("CP1", T0, started + timedelta(seconds=900), LIMITS, started) is None
    found = offline("CP1", T0, started + timedelta(seconds=901), LIMITS, started)
    assert isinstance(found, Raise)
    assert offline("CP1", started, started + timedelta(seconds=10), LIMITS, started) == Clear(found.key)


def test_a_station_never_seen_is_not_offline() -> None:
    assert offline("CP1", None, T0, LIMITS) is None


@pytest.mark.parametrize("kind", ["FirmwareTamperDetected", "InvalidFirmwareSignature",
                                  "TamperDetectionActivated", "InvalidTLSVersion", "InvalidTLSCipherSuite",
                                  "InvalidChargingStationCertificate"])
def test_critical_security_events_raise_critical_alarms(kind: str) -> None:
    [raised] = decide(SecurityEventReported(station_id="CP1", kind=kind, tech_info="x"), LIMITS)
    assert isinstance(raised, Raise)
    assert raised.key == AlarmKey("CP1", Kind.SECURITY_EVENT, kind)
    assert raised.severity is Severity.CRITICAL


@pytest.mark.parametrize("kind", ["StartupOfTheDevice", "ResetOrReboot", "FailedToAuthenticateAtCsms"])
def test_routine_security_events_raise_nothing(kind: str) -> None:
    assert decide(SecurityEventReported(station_id="CP1", kind=kind), LIMITS) == []


@pytest.mark.parametrize(("action", "failed", "ok", "kind"), [
    ("FirmwareStatusNotification", "DownloadFailed", "Installed", Kind.FIRMWARE_FAILED),
    ("FirmwareStatusNotification", "InstallationFailed", "Installed", Kind.FIRMWARE_FAILED),
    ("FirmwareStatusNotification", "InstallVerificationFailed", "Installed", Kind.FIRMWARE_FAILED),
    ("FirmwareStatusNotification", "InvalidSignature", "Installed", Kind.FIRMWARE_FAILED),
    ("SignedFirmwareStatusNotification", "SignatureError", "Installed", Kind.FIRMWARE_FAILED),
    ("DiagnosticsStatusNotification", "UploadFailed", "Uploaded", Kind.LOG_UPLOAD_FAILED),
    ("LogStatusNotification", "UploadFailure", "Uploaded", Kind.LOG_UPLOAD_FAILED),
    ("LogStatusNotification", "BadMessage", "Uploaded", Kind.LOG_UPLOAD_FAILED),
    ("LogStatusNotification", "PermissionDenied", "Uploaded", Kind.LOG_UPLOAD_FAILED),
    ("LogStatusNotification", "NotSupportedOperation", "Uploaded", Kind.LOG_UPLOAD_FAILED),
])
def test_firmware_and_log_failures_raise_and_success_clears(
    action: str, failed: str, ok: str, kind: Kind
) -> None:
    [raised] = decide(reported(action, failed), LIMITS)
    assert isinstance(raised, Raise) and raised.key == AlarmKey("CP1", kind)
    assert failed in raised.detail
    assert decide(reported(action, ok), LIMITS) == [Clear(raised.key)]


def test_progress_notifications_and_other_reports_decide_nothing() -> None:
    assert decide(reported("FirmwareStatusNotification", "Downloading"), LIMITS) == []
    assert decide(reported("LogStatusNotification", "Uploading"), LIMITS) == []
    data_transfer = StationReported(station_id="CP1", action="DataTransfer", data={"vendorId": "V"})
    assert decide(data_transfer, LIMITS) == []


def test_clock_offset_over_the_limit_raises_and_back_under_clears() -> None:
    [raised] = decide(ClockOffsetMeasured(station_id="CP1", offset_s=-301.0), LIMITS)
    assert isinstance(raised, Raise) and raised.key == AlarmKey("CP1", Kind.CLOCK_OFFSET)
    assert decide(ClockOffsetMeasured(station_id="CP1", offset_s=12.0), LIMITS) == [Clear(raised.key)]


def test_transactions_with_meter_flags_raise_a_warning_per_transaction() -> None:
    [raised] = decide(TransactionEnded(station_id="CP1", transaction=tx((SEQ_GAP, METER_BACKWARDS))), LIMITS)
    assert isinstance(raised, Raise)
    assert raised.key == AlarmKey("CP1", Kind.METER_ANOMALY, "T1")
    assert raised.severity is Severity.WARNING and "meter_backwards" in raised.detail
    assert decide(TransactionStarted(station_id="CP1", transaction=tx((OFFLINE,))), LIMITS) == []


def test_a_failed_command_raises_command_unanswered() -> None:
    [raised] = decide(CommandFailed(station_id="CP1", action="Reset", reason="timeout"), LIMITS)
    assert isinstance(raised, Raise)
    assert raised.key == AlarmKey("CP1", Kind.COMMAND_UNANSWERED, "Reset")


def test_unrelated_events_decide_nothing() -> None:
    sample = MeterSample(station_id="CP1", evse_id=1, connector_id=1, ts=T0, values=())
    assert decide(MeterSampled(station_id="CP1", sample=sample), LIMITS) == []


def test_the_book_keeps_one_active_alarm_per_key() -> None:
    book = AlarmBook()
    [raised] = decide(status("Faulted"), LIMITS)
    assert isinstance(raised, Raise)
    assert book.admit(raised) == raised
    book.opened(alarm_of(raised, 1))
    assert book.admit(raised) is None  # duplicate
    other: Decision = decide(status("Faulted", connector=2), LIMITS)[0]
    assert book.admit(other) == other  # another connector is another alarm
    clear = Clear(raised.key)
    assert book.admit(clear) == clear
    assert book.admit(Clear(AlarmKey("CP2", Kind.CONNECTOR_FAULTED, "1/1"))) is None  # nothing to clear


def test_acknowledged_alarms_stay_active_until_cleared() -> None:
    clock = FakeClock()
    [raised] = decide(status("Faulted"), LIMITS)
    assert isinstance(raised, Raise)
    alarm = alarm_of(raised, 1)
    book = AlarmBook([alarm])
    clock.advance(60)
    acked = acknowledge(alarm, clock.now(), "operator")
    assert acked.state is State.ACKNOWLEDGED and acked.acknowledged_by == "operator" and acked.active
    book.changed(acked)
    assert book.admit(raised) is None
    assert acknowledge(acked, clock.now() + timedelta(seconds=5), "other") == acked  # idempotent
    assert book.admit(Clear(raised.key)) == Clear(raised.key)


def test_ack_only_alarms_end_with_their_acknowledgement_and_no_event_clears_them() -> None:
    clock = FakeClock()
    [raised] = decide(CommandFailed(station_id="CP1", action="Reset", reason="timeout"), LIMITS)
    assert isinstance(raised, Raise)
    alarm = alarm_of(raised, 7)
    book = AlarmBook([alarm])
    assert book.admit(Clear(raised.key)) is None
    clock.advance(30)
    acked = acknowledge(alarm, clock.now(), "operator")
    assert acked.state is State.CLEARED and acked.cleared_at == acked.acknowledged_at == clock.now()
    book.changed(acked)
    assert book.active == {}
    assert book.admit(raised) == raised  # the next failure is a new alarm


def test_the_book_counts_active_alarms_by_kind_and_severity() -> None:
    decisions = [decide(status("Faulted", connector=c), LIMITS)[0] for c in (1, 2)]
    alarms = [alarm_of(d, i) for i, d in enumerate(decisions, 1) if isinstance(d, Raise)]
    book = AlarmBook(alarms)
    assert book.counts() == {(Kind.CONNECTOR_FAULTED, Severity.MAJOR): 2}
    acked = acknowledge(alarms[0], T0, "op")
    assert AlarmBook([acked]).counts() == {(Kind.CONNECTOR_FAULTED, Severity.MAJOR): 1}
