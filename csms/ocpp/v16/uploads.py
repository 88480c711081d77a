"""OCPP 1.6J log uploads: GetDiagnostics (core) and GetLog (security extension), request and answer."""

from __future__ import annotations

from typing import Any

from csms.uploads.rules import NO_FILE, RequestAnswer, UploadParams
from ocppj.timestamps import format_datetime


def get_diagnostics(location: str, params: UploadParams) -> dict[str, Any]:
    """The GetDiagnostics.req payload uploading to ``location``."""
    payload: dict[str, Any] = {"location": location}
    if params.retries is not None:
        payload["retries"] = params.retries
    if params.retry_interval_s is not None:
        payload["retryInterval"] = params.retry_interval_s
    if params.oldest is not None:
        payload["startTime"] = format_datetime(params.oldest)
    if params.latest is not None:
        payload["stopTime"] = format_datetime(params.latest)
    return payload


def read_get_diagnostics(answer: dict[str, Any]) -> RequestAnswer:
    """Accepted with the file's name, or ``NoFile`` when the station has nothing to upload."""
    name = answer.get("fileName")
    return RequestAnswer("Accepted", name) if isinstance(name, str) and name else RequestAnswer(NO_FILE)


def get_log(location: str, request_id: int, params: UploadParams) -> dict[str, Any]:
    """The GetLog.req payload (the same shape in 1.6 security and 2.0.1)."""
    log: dict[str, Any] = {"remoteLocation": location}
    if params.oldest is not None:
        log["oldestTimestamp"] = format_datetime(params.oldest)
    if params.latest is not None:
        log["latestTimestamp"] = format_datetime(params.latest)
    assert params.log_type is not None
    payload: dict[str, Any] = {"log": log, "logType": params.log_type.value, "requestId": request_id}
    if params.retries is not None:
        payload["retries"] = params.retries
    if params.retry_interval_s is not None:
        payload["retryInterval"] = params.retry_interval_s
    return payload


def read_get_log(answer: dict[str, Any]) -> RequestAnswer:
    name = answer.get("filename")
    return RequestAnswer(str(answer["status"]), name if isinstance(name, str) and name else None)
