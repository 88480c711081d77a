"""1.6 payloads of the desired configuration: ChangeConfiguration (one key a call) and
GetConfiguration of the desired keys, read back into ``csms.desired_config.rules`` values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from csms.desired_config.rules import DesiredItem, Reading, ResultStatus
from csms.ocpp.outbound import Outbound

Answer = tuple[ResultStatus, str | None]


def change(item: DesiredItem) -> Outbound[Answer]:
    """ChangeConfiguration of one key."""
    return Outbound("ChangeConfiguration", {"key": item.key, "value": item.value}, _read_change)


def _read_change(reply: dict[str, Any]) -> Answer:
    return ResultStatus.of(reply.get("status")), None


def read(keys: Sequence[str]) -> Outbound[dict[str, Reading]]:
    """GetConfiguration of ``keys``: each known key's value (None: not readable), unknown ones unsupported."""
    return Outbound("GetConfiguration", {"key": list(keys)}, _read_values)


def _read_values(reply: dict[str, Any]) -> dict[str, Reading]:
    out = {str(k["key"]): Reading(k.get("value")) for k in reply.get("configurationKey") or []}
    for key in reply.get("unknownKey") or []:
        out[str(key)] = Reading(None, supported=False)
    return out
