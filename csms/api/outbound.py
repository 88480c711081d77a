"""Checks before the API sends an operator's action to a station: is it there, and does it fit.

The outbound limit is ``max_outbound_bytes`` (0: the inbound ``max_message_bytes``), and for a
2.0.1 station no more than the ``DeviceDataCtrlr.BytesPerMessage`` it reported (the action's
own instance, e.g. ``BytesPerMessage(SetVariables)``, first).
"""

from __future__ import annotations

from typing import Any

import orjson

from csms.api.context import ApiContext
from csms.api.errors import ApiError
from ocppj import framing
from ocppj.versions import OcppVersion

_LONGEST_ID = "x" * framing.MAX_ID_LENGTH


async def absent(ctx: ApiContext, charger_id: str) -> ApiError:
    """The error for a station without a live session: 409 when registered, else 404."""
    if charger_id in ctx.service.live or await ctx.service.store.get_station(charger_id) is not None:
        return ApiError(409, "not_connected", f"charger {charger_id!r} is registered but not connected")
    return ApiError(404, "not_registered", f"charger {charger_id!r} is not registered")


def outbound_limit(ctx: ApiContext, charger_id: str, version: OcppVersion, action: str) -> int:
    """The largest CALL frame, in bytes, this station may be sent for ``action``."""
    s = ctx.settings
    limit = s.max_outbound_bytes or s.max_message_bytes
    live = ctx.service.live.get(charger_id)
    if version is OcppVersion.V201 and live is not None:
        own = f"DeviceDataCtrlr/BytesPerMessage({action})/Actual"
        for key in (own, "DeviceDataCtrlr/BytesPerMessage/Actual"):
            reported = live.variables.get(key, "").strip()
            if reported.isascii() and reported.isdigit() and int(reported) > 0:
                return min(limit, int(reported))
    return limit


def check_size(
    ctx: ApiContext, charger_id: str, version: OcppVersion, action: str, payload: dict[str, Any]
) -> None:
    """Raise 413 ``payload_too_large`` when the CALL would exceed the station's limit (nothing is sent)."""
    try:
        size = len(framing.encode_call(_LONGEST_ID, action, payload))
    except orjson.JSONEncodeError as exc:
        raise ApiError(400, "invalid_payload", f"payload cannot be sent as OCPP JSON: {exc}") from None
    limit = outbound_limit(ctx, charger_id, version, action)
    if size > limit:
        raise ApiError(
            413, "payload_too_large",
            f"the {action} frame would be {size} bytes; this station takes at most {limit}",
        )
