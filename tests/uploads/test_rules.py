"""The pure rules of uploads: progress from notifications, status moves, names, time bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from csms.ocpp.v16 import uploads as v16
from csms.ocpp.v201 import uploads as v201
from csms.uploads.rules import (
    Kind,
    LogType,
    Progress,
    Receipt,
    Upload,
    UploadParams,
    accepts_file,
    is_open,
    next_status,
    progress_of,
    prune_cutoff,
    safe_filename,
    token_digest,
)

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def upload(status: str) -> Upload:
    return Upload(id=7, charger_id="CP1", params=UploadParams(kind=Kind.LOG, log_type=LogType.SECURITY_LOG),
                  status=status, receipt=Receipt.WAITING, created_at=T0, updated_at=T0,
                  expires_at=T0 + timedelta(hours=1))


@pytest.mark.parametrize(("action", "data", "expected"), [
    ("DiagnosticsStatusNotification", {"status": "Uploading"}, Progress(Kind.DIAGNOSTICS, "Uploading", None)),
    ("LogStatusNotification", {"status": "Uploaded", "requestId": 4}, Progress(Kind.LOG, "Uploaded", 4)),
    ("LogStatusNotification", {"status": "Idle"}, Progress(Kind.LOG, "Idle", None)),
    ("LogStatusNotification", {"status": "Uploaded", "requestId": "4"}, Progress(Kind.LOG, "Uploaded", None)),
    ("FirmwareStatusNotification", {"status": "Installed"}, None),
    ("LogStatusNotification", {"requestId": 4}, None),
])
def test_progress_is_read_from_log_notifications_only(
    action: str, data: dict[str, object], expected: Progress | None
) -> None:
    assert progress_of(action, data) == expected


def test_idle_and_repeats_change_nothing_and_final_statuses_close_the_upload() -> None:
    assert next_status(upload("Accepted"), Progress(Kind.LOG, "Idle", 7)) is None
    assert next_status(upload("Uploading"), Progress(Kind.LOG, "Uploading", 7)) is None
    assert next_status(upload("Uploading"), Progress(Kind.LOG, "Uploaded", 7)) == "Uploaded"
    assert is_open(upload("Uploading")) and is_open(upload("AcceptedCanceled")) and is_open(upload("Failed"))
    finals = ("Uploaded", "UploadFailed", "UploadFailure", "Rejected", "Canceled", "NoFile",
              "PermissionDenied")
    for final in finals:
        assert not is_open(upload(final))


def test_addresses_expire_and_files_age_out() -> None:
    u = upload("Accepted")
    assert accepts_file(u, T0 + timedelta(minutes=59)) and not accepts_file(u, T0 + timedelta(hours=1))
    assert prune_cutoff(T0, 30) == T0 - timedelta(days=30)
    assert token_digest("abc") != token_digest("abd") and len(token_digest("abc")) == 64


@pytest.mark.parametrize(("name", "expected"), [
    ("CP1-diagnostics.log", "CP1-diagnostics.log"),
    ("../../etc/passwd", "passwd"),
    ('C:\\logs\\a "quoted" name.txt', "a_quoted_name.txt"),
    ("...", "upload-7.log"),
    (None, "upload-7.log"),
])
def test_download_names_are_plain(name: str | None, expected: str) -> None:
    assert safe_filename(name, 7) == expected


def test_16_get_diagnostics_and_get_log_payloads() -> None:
    params = UploadParams(kind=Kind.DIAGNOSTICS, oldest=T0, latest=T0 + timedelta(hours=1), retries=2,
                          retry_interval_s=30)
    assert v16.get_diagnostics("http://csms/uploads/t", params) == {
        "location": "http://csms/uploads/t", "retries": 2, "retryInterval": 30,
        "startTime": "2026-12-01T08:00:00.000Z", "stopTime": "2026-12-01T09:00:00.000Z"}
    assert v16.read_get_diagnostics({"fileName": "d.log"}).filename == "d.log"
    assert v16.read_get_diagnostics({}).status == "NoFile"
    log = UploadParams(kind=Kind.LOG, log_type=LogType.DIAGNOSTICS_LOG, oldest=T0)
    assert v201.get_log("http://csms/uploads/t", 9, log) == {
        "log": {"remoteLocation": "http://csms/uploads/t", "oldestTimestamp": "2026-12-01T08:00:00.000Z"},
        "logType": "DiagnosticsLog", "requestId": 9}
    answer = v201.read_get_log({"status": "AcceptedCanceled", "filename": "x.log"})
    assert (answer.status, answer.filename) == ("AcceptedCanceled", "x.log")
