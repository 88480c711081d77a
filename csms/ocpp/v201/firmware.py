"""OCPP 2.0.1 firmware updates: UpdateFirmware, with the signature and certificate when given."""

from __future__ import annotations

from typing import Any

from csms.firmware.campaign import FirmwareRequest
from ocppj.timestamps import format_datetime


def update_request(req: FirmwareRequest) -> tuple[str, dict[str, Any]]:
    """(action, payload) for ``req``."""
    firmware: dict[str, Any] = {"location": req.location,
                                "retrieveDateTime": format_datetime(req.retrieve_at)}
    if req.signature is not None and req.signing_certificate is not None:
        firmware["signingCertificate"] = req.signing_certificate
        firmware["signature"] = req.signature
    return "UpdateFirmware", {"requestId": req.request_id, "firmware": firmware}


def read_answer(action: str, reply: dict[str, Any]) -> tuple[bool, str | None]:
    """(accepted, why not): ``status`` with ``statusInfo.reasonCode`` when the station gives one."""
    status = str(reply.get("status", ""))
    if status == "Accepted":
        return True, None
    info = reply.get("statusInfo")
    reason = info.get("reasonCode") if isinstance(info, dict) else None
    return False, f"{status}: {reason}" if reason else status
