"""The rules of log uploads, free of I/O: what a request is, how its status moves, what expires.

An upload starts when the operator asks a station for a file (1.6 ``GetDiagnostics``, or
``GetLog`` in the 1.6 security extension and 2.0.1). Its ``status`` is the latest word on it:
``Requested``, the station's answer (``Accepted``, ``Rejected``, ``AcceptedCanceled``, ``NoFile``
for a 1.6 answer without a file name), ``Failed`` (no valid answer), then the station's
notifications verbatim (``Uploading``, ``Uploaded``, ``UploadFailed``, ``UploadFailure``, ...).
The file's arrival is tracked apart (``Receipt``): a station may report ``Uploaded`` before or
after the CSMS has the file.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


class Kind(enum.StrEnum):
    DIAGNOSTICS = "diagnostics"  # 1.6 GetDiagnostics
    LOG = "log"  # GetLog (1.6 security extension, 2.0.1)


class LogType(enum.StrEnum):
    DIAGNOSTICS_LOG = "DiagnosticsLog"
    SECURITY_LOG = "SecurityLog"


class Receipt(enum.StrEnum):
    """Where the file stands on the CSMS's side."""

    WAITING = "waiting"  # the URL takes one upload
    RECEIVING = "receiving"  # an upload is streaming in
    RECEIVED = "received"  # the file is kept
    PRUNED = "pruned"  # the file was deleted after the retention period


REQUESTED = "Requested"
FAILED = "Failed"
ACCEPTED_CANCELED = "AcceptedCanceled"
CANCELED = "Canceled"  # a later GetLog answered AcceptedCanceled: the station dropped this one
NO_FILE = "NoFile"
IDLE = "Idle"
TERMINAL = frozenset({
    NO_FILE, CANCELED, "Rejected", "Uploaded", "UploadFailed", "UploadFailure", "BadMessage",
    "NotSupportedOperation", "PermissionDenied",
})
"""Statuses after which a station says nothing more about this request. ``Failed`` is not one:
a station whose answer was lost may still upload and report."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadParams:
    """What the operator asked for; times bound the log's entries (all optional)."""

    kind: Kind
    log_type: LogType | None = None  # GetLog only
    oldest: datetime | None = None  # 1.6 startTime / GetLog oldestTimestamp
    latest: datetime | None = None  # 1.6 stopTime / GetLog latestTimestamp
    retries: int | None = None
    retry_interval_s: int | None = None


@dataclass(frozen=True, slots=True)
class RequestAnswer:
    """A station's answer to the request, read by the version's codec."""

    status: str
    filename: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Upload:
    """One request and what became of it (a row of the store)."""

    id: int
    charger_id: str
    params: UploadParams
    status: str
    receipt: Receipt
    created_at: datetime
    updated_at: datetime
    expires_at: datetime  # the upload URL's end
    filename: str | None = None  # as the station named it
    size_bytes: int | None = None
    sha256: str | None = None
    received_at: datetime | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One line of an upload's timeline."""

    at: datetime
    event: str  # a status, "FileReceived", "UploadAborted" or "FilePruned"
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """A station's notification about an upload: its status and, when given, the request id."""

    kind: Kind
    status: str
    request_id: int | None


def token_digest(token: str) -> str:
    """What the store keeps of an upload token (the token itself is only in the URL)."""
    return hashlib.sha256(token.encode()).hexdigest()





def progress_of(action: str, data: Mapping[str, object]) -> Progress | None:
    """The upload progress a kept notification carries (None for other messages)."""
    status = data.get("status")
    if not isinstance(status, str):
        return None
    if action == "DiagnosticsStatusNotification":
        return Progress(Kind.DIAGNOSTICS, status, None)
    if action == "LogStatusNotification":
        request_id = data.get("requestId")
        return Progress(Kind.LOG, status, request_id if isinstance(request_id, int) else None)
    return None


def is_open(upload: Upload) -> bool:
    """Whether a station may still report on ``upload``."""
    return upload.status not in TERMINAL


def next_status(upload: Upload, progress: Progress) -> str | None:
    """The status ``progress`` moves ``upload`` to; None when it changes nothing (``Idle``, a repeat)."""
    if progress.status == IDLE or progress.status == upload.status:
        return None
    return progress.status


def canceled_by(newer: Upload, answer: RequestAnswer, older: Upload) -> bool:
    """Whether the ``answer`` to ``newer`` (``AcceptedCanceled``) ended ``older``: an open log
    upload of the same station requested before it."""
    return (answer.status == ACCEPTED_CANCELED and older.id < newer.id
            and older.charger_id == newer.charger_id and older.params.kind is Kind.LOG
            and newer.params.kind is Kind.LOG and is_open(older))


def accepts_file(upload: Upload, now: datetime) -> bool:
    """Whether the upload URL still takes a file (the receiver decides 404 vs 409 from this)."""
    return now < upload.expires_at


def expiry(now: datetime, ttl_s: float) -> datetime:
    return now + timedelta(seconds=ttl_s)


def prune_cutoff(now: datetime, retention_days: float) -> datetime:
    """Files received before this time are deleted."""
    return now - timedelta(days=retention_days)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str | None, upload_id: int) -> str:
    """A download name made of ``[A-Za-z0-9._-]`` only (no path, no quotes), never empty."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    clean = _UNSAFE.sub("_", base).strip("._")[:128]
    return clean or f"upload-{upload_id}.log"
