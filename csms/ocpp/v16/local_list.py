"""OCPP 1.6 local authorization lists: SendLocalList (``idTagInfo``), GetLocalListVersion and the
configuration keys that bound a list. Same names as ``csms.ocpp.v201.local_list``."""

from __future__ import annotations

from typing import Any

from csms.core.model import AuthResult
from csms.local_lists.rules import Limits, Message, SendStatus
from csms.ocpp.outbound import Outbound
from csms.ocpp.v16.convert import id_tag_info

ID_MAX_LENGTH = 20  # idTag and parentIdTag are CiString20
_LIMIT_KEYS = ("SendLocalListMaxLength", "LocalAuthListMaxLength")


def send_local_list(message: Message) -> Outbound[SendStatus]:
    items: list[dict[str, Any]] = []
    for change in message.changes:
        item: dict[str, Any] = {"idTag": change.id_tag}
        if change.entry is not None:
            e = change.entry
            item["idTagInfo"] = id_tag_info(AuthResult(e.status, e.expiry, e.parent))
        items.append(item)
    payload = {"listVersion": message.version, "updateType": message.update_type.value,
               "localAuthorizationList": items}
    return Outbound("SendLocalList", payload, lambda answer: SendStatus(answer["status"]))


def get_version() -> Outbound[int]:
    """The station's list version (0: empty, -1: lists not supported)."""
    return Outbound("GetLocalListVersion", {}, lambda answer: int(answer["listVersion"]))


def read_limits(default_items: int) -> Outbound[Limits]:
    """``SendLocalListMaxLength`` (items per message) and ``LocalAuthListMaxLength`` (list size)."""
    def read(answer: dict[str, Any]) -> Limits:
        values = {k["key"]: k.get("value") for k in answer.get("configurationKey", [])}
        items = _positive(values.get("SendLocalListMaxLength"))
        return Limits(items or default_items, _positive(values.get("LocalAuthListMaxLength")), ID_MAX_LENGTH)
    return Outbound("GetConfiguration", {"key": list(_LIMIT_KEYS)}, read)


def _positive(value: object) -> int | None:
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None
