"""The acknowledged-transactions ledger (``csms-sim run --ledger FILE``).

One JSON line per transaction message the CSMS answered with a CallResult, written as the answer
arrives (a run that is killed keeps what it wrote)::

    {"station": "SIM00001", "action": "StartTransaction", "tx": "17", "event": "Started", "seq": null,
     "evse": 1, "at": "2026-12-07T22:10:03.120Z"}

``tx`` is the transaction id as the CSMS stores it: the id the CSMS gave in its StartTransaction
answer (1.6, as text), or the station's ``transactionId`` (2.0.1). ``event`` is ``Started``,
``Updated`` or ``Ended`` (1.6 StartTransaction, MeterValues with a transaction, StopTransaction;
2.0.1 the TransactionEvent's ``eventType``); ``seq`` is the 2.0.1 ``seqNo``. A message the CSMS
never answered (the connection dropped, the call timed out, a CallError) is not in the ledger:
what is here is what a CSMS keeping its promise (no CallResult before a durable commit) must have
stored. The workers of a ``--workers`` run append to the same file; each line is one ``write``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import orjson

from ocppj.timestamps import format_datetime


def entry(
    station_id: str, action: str, payload: dict[str, Any], response: dict[str, Any],
) -> dict[str, Any] | None:
    """The ledger line of an acknowledged transaction message; None for other messages."""
    tx: Any = None
    seq: Any = None
    evse: Any = None
    event: Any = None
    if action == "StartTransaction":
        tx, event, evse = response.get("transactionId"), "Started", payload.get("connectorId")
    elif action == "StopTransaction":
        tx, event = payload.get("transactionId"), "Ended"
    elif action == "MeterValues" and payload.get("transactionId") is not None:
        tx, event, evse = payload["transactionId"], "Updated", payload.get("connectorId")
    elif action == "TransactionEvent":
        info = payload.get("transactionInfo") or {}
        tx, event, seq = info.get("transactionId"), payload.get("eventType"), payload.get("seqNo")
        evse = (payload.get("evse") or {}).get("id")
    else:
        return None
    return {"station": station_id, "action": action, "tx": None if tx is None else str(tx), "event": event,
            "seq": seq, "evse": evse, "at": format_datetime(datetime.now(UTC))}


class Ledger:
    """Appends ledger lines to ``path`` (opened with O_APPEND: workers may share it)."""

    __slots__ = ("_fd", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def record(self, station_id: str, action: str, payload: dict[str, Any], response: dict[str, Any]) -> None:
        line = entry(station_id, action, payload, response)
        if line is not None:
            os.write(self._fd, orjson.dumps(line) + b"\n")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def reset(path: str) -> None:
    """Empty (or create) the ledger file."""
    with open(path, "wb"):
        pass


def read(path: str) -> list[dict[str, Any]]:
    """The lines of a ledger file."""
    with open(path, "rb") as f:
        return [orjson.loads(line) for line in f if line.strip()]
