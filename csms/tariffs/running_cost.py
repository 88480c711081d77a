"""2.0.1 ``CostUpdated``: the running cost of each open 2.0.1 session, sent while it charges.

Sent every ``interval_s`` when the price incl. VAT changed since the last one the station got.
With several core nodes every node knows every open session (the events of them all) and sends
the updates of the stations it serves, so a station served by another node since the session
began still gets them, once.
1.6 has no such message: those stations' running cost shows in the API only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import structlog

from csms.core.events import StationBooted, TransactionEnded, TransactionStarted
from csms.core.model import Transaction
from csms.errors import CallErrorReceived
from csms.tariffs.pricing import Cost
from ocppj.versions import OcppVersion

log = structlog.get_logger("csms.tariffs")

Call = Callable[[str, str, dict[str, Any]], Awaitable[dict[str, Any]]]
Quote = Callable[[Transaction], Awaitable[Cost | None]]


class RunningCost:
    def __init__(
        self, quote: Quote, call: Call, interval_s: float, *, here: Callable[[str], bool] = lambda _s: True
    ) -> None:
        self.quote = quote
        self.call = call
        self.interval_s = interval_s
        self.here = here  # serves the station now: only that core sends its updates
        self.open: dict[tuple[str, str], Transaction] = {}
        self.sent: dict[tuple[str, str], Decimal] = {}
        self.unsupported: set[str] = set()  # stations that answered NotImplemented/NotSupported
        self.updates_sent = 0

    def on_event(self, event: object) -> None:
        if isinstance(event, TransactionStarted) and event.transaction.protocol is OcppVersion.V201:
            tx = event.transaction
            self.open[(tx.station_id, tx.tx_id)] = tx
        elif isinstance(event, TransactionEnded):
            key = (event.transaction.station_id, event.transaction.tx_id)
            self.open.pop(key, None)
            self.sent.pop(key, None)
        elif isinstance(event, StationBooted):  # new firmware may support it now
            self.unsupported.discard(event.station_id)

    async def send_updates(self) -> None:
        for key, tx in list(self.open.items()):
            if tx.station_id in self.unsupported or not self.here(tx.station_id):
                continue
            try:
                cost = await self.quote(tx)
            except Exception:
                log.exception("running cost not computed", charger_id=tx.station_id, transaction_id=tx.tx_id)
                continue
            if cost is None or self.sent.get(key) == cost.incl_vat or key not in self.open:
                continue
            try:
                await self.call(tx.station_id, "CostUpdated",
                                {"totalCost": float(cost.incl_vat), "transactionId": tx.tx_id})
            except CallErrorReceived as exc:
                if exc.code in ("NotImplemented", "NotSupported"):  # asked again after its next boot
                    self.unsupported.add(tx.station_id)
                log.info("CostUpdated refused", charger_id=tx.station_id, reason=str(exc))
                continue
            except Exception as exc:  # offline, timeout: the next round tries again
                log.info("CostUpdated not delivered", charger_id=tx.station_id, reason=str(exc))
                continue
            self.sent[key] = cost.incl_vat
            self.updates_sent += 1

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.send_updates()
