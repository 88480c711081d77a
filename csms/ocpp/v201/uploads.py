"""OCPP 2.0.1 log uploads: GetLog, request and answer (the 1.6 security extension's shape)."""

from __future__ import annotations

from typing import Any

from csms.ocpp.v16 import uploads as v16
from csms.uploads.rules import RequestAnswer, UploadParams


def get_log(location: str, request_id: int, params: UploadParams) -> dict[str, Any]:
    """The GetLog request payload uploading to ``location``."""
    return v16.get_log(location, request_id, params)


def read_get_log(answer: dict[str, Any]) -> RequestAnswer:
    return v16.read_get_log(answer)
