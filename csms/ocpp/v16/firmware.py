"""OCPP 1.6 firmware updates: UpdateFirmware, or the security whitepaper's SignedUpdateFirmware."""

from __future__ import annotations

from typing import Any

from csms.firmware.campaign import FirmwareRequest
from ocppj.timestamps import format_datetime


def update_request(req: FirmwareRequest) -> tuple[str, dict[str, Any]]:
    """(action, payload) for ``req``: SignedUpdateFirmware when it carries a signature."""
    retrieve = format_datetime(req.retrieve_at)
    if req.signature is None or req.signing_certificate is None:
        return "UpdateFirmware", {"location": req.location, "retrieveDate": retrieve}
    firmware = {"location": req.location, "retrieveDateTime": retrieve,
                "signingCertificate": req.signing_certificate, "signature": req.signature}
    return "SignedUpdateFirmware", {"requestId": req.request_id, "firmware": firmware}


def read_answer(action: str, reply: dict[str, Any]) -> tuple[bool, str | None]:
    """(accepted, why not): UpdateFirmware's answer is empty, so an answer counts as accepted."""
    if action == "UpdateFirmware":
        return True, None
    status = str(reply.get("status", ""))
    return status == "Accepted", None if status == "Accepted" else status
