"""2.0.1 display messages for the virtual charger: kept per charger, reported, cleared.

SetDisplayMessage keeps the message (up to ``MAX_MESSAGES``; HTML is not supported, a message for
a transaction the charger does not run is refused); GetDisplayMessages answers Accepted and sends
the matching messages in NotifyDisplayMessages (``PER_REPORT`` a message, ``tbc`` until the last),
or Unknown when none match; ClearDisplayMessage removes one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from simulators.link import Served
from simulators.model import ChargerOps
from simulators.serving import Handler

MAX_MESSAGES = 16
PER_REPORT = 4
FORMATS = frozenset({"ASCII", "UTF8", "URI"})

_BOARDS: WeakKeyDictionary[ChargerOps, dict[int, dict[str, Any]]] = WeakKeyDictionary()


def messages(c: ChargerOps) -> dict[int, dict[str, Any]]:
    """The charger's display messages by id (``MessageInfoType`` as received)."""
    board = _BOARDS.get(c)
    if board is None:
        board = _BOARDS[c] = {}
    return board


def _set(c: ChargerOps, p: dict[str, Any]) -> Served:
    info = p["message"]
    board = messages(c)
    if info["message"]["format"] not in FORMATS:
        return Served({"status": "NotSupportedMessageFormat"})
    tx_id = info.get("transactionId")
    if tx_id is not None and not any(e.tx is not None and e.tx.local_id == tx_id for e in c.evses.values()):
        return Served({"status": "UnknownTransaction"})
    if info["id"] not in board and len(board) >= MAX_MESSAGES:
        return Served({"status": "Rejected", "statusInfo": {"reasonCode": "Full",
                                                            "additionalInfo": f"{MAX_MESSAGES} messages"}})
    board[info["id"]] = dict(info)
    return Served({"status": "Accepted"})


def _get(c: ChargerOps, p: dict[str, Any]) -> Served:
    ids = set(p.get("id") or ())
    found = [
        m for m in messages(c).values()
        if (not ids or m["id"] in ids) and p.get("priority") in (None, m["priority"])
        and p.get("state") in (None, m.get("state"))
    ]
    if not found:
        return Served({"status": "Unknown"})

    def report() -> None:
        chunks = [found[i:i + PER_REPORT] for i in range(0, len(found), PER_REPORT)]
        for n, chunk in enumerate(chunks):
            payload = {"requestId": p["requestId"], "tbc": n < len(chunks) - 1, "messageInfo": chunk}
            c.enqueue("NotifyDisplayMessages", _const(payload))

    return Served({"status": "Accepted"}, report)


def _const(payload: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: payload


def _clear(c: ChargerOps, p: dict[str, Any]) -> Served:
    removed = messages(c).pop(p["id"], None)
    return Served({"status": "Accepted" if removed is not None else "Unknown"})


HANDLERS: dict[str, Handler] = {
    "SetDisplayMessage": _set,
    "GetDisplayMessages": _get,
    "ClearDisplayMessage": _clear,
}
