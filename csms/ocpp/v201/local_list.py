"""OCPP 2.0.1 local authorization lists: SendLocalList (``idTokenInfo``), GetLocalListVersion and
the ``LocalAuthListCtrlr`` variables that bound a message. Same names as
``csms.ocpp.v16.local_list``."""

from __future__ import annotations

from typing import Any

from csms.core.model import AuthResult
from csms.local_lists.rules import Limits, Message, SendStatus
from csms.ocpp.outbound import Outbound
from csms.ocpp.v201.convert import id_token_info

ID_MAX_LENGTH = 36  # IdTokenType.idToken
TOKEN_TYPE = "ISO14443"  # the registry's tags are RFID cards
_ITEM_BYTES = 160  # a generous size of one entry on the wire, to honour BytesPerMessage
_COMPONENT = "LocalAuthListCtrlr"


def send_local_list(message: Message) -> Outbound[SendStatus]:
    items: list[dict[str, Any]] = []
    for change in message.changes:
        item: dict[str, Any] = {"idToken": {"idToken": change.id_tag, "type": TOKEN_TYPE}}
        if change.entry is not None:
            e = change.entry
            item["idTokenInfo"] = id_token_info(AuthResult(e.status, e.expiry, e.parent))
        items.append(item)
    payload: dict[str, Any] = {"versionNumber": message.version, "updateType": message.update_type.value}
    if items:
        payload["localAuthorizationList"] = items
    return Outbound("SendLocalList", payload, lambda answer: SendStatus(answer["status"]))


def get_version() -> Outbound[int]:
    """The station's list version (0: empty or none)."""
    return Outbound("GetLocalListVersion", {}, lambda answer: int(answer["versionNumber"]))


def read_limits(default_items: int) -> Outbound[Limits]:
    """``LocalAuthListCtrlr.ItemsPerMessage`` and ``BytesPerMessage`` (the smaller bound wins)."""
    names = ("ItemsPerMessage", "BytesPerMessage")
    payload = {"getVariableData": [
        {"component": {"name": _COMPONENT}, "variable": {"name": n}} for n in names
    ]}

    def read(answer: dict[str, Any]) -> Limits:
        values: dict[str, int] = {}
        for r in answer.get("getVariableResult", []):
            if r.get("attributeStatus") == "Accepted" and r["component"]["name"] == _COMPONENT:
                number = _positive(r.get("attributeValue"))
                if number is not None:
                    values[r["variable"]["name"]] = number
        items = values.get("ItemsPerMessage") or default_items
        if "BytesPerMessage" in values:
            items = max(1, min(items, values["BytesPerMessage"] // _ITEM_BYTES))
        return Limits(items, None, ID_MAX_LENGTH)
    return Outbound("GetVariables", payload, read)


def _positive(value: object) -> int | None:
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None
