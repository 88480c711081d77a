"""Baseline CSMS for side-by-side benchmarks: the ``ocpp`` library's ``ChargePoint`` with
``@on`` handlers, default settings (schema validation on), as its documentation shows.

    python -m bench.baseline.central_system --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as CP16
from ocpp.v16 import call_result as r16
from ocpp.v201 import ChargePoint as CP201
from ocpp.v201 import call_result as r201

_tx_ids = itertools.count(1)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Baseline16(CP16):
    @on("BootNotification")
    async def on_boot(
        self, charge_point_vendor: str, charge_point_model: str, **_: Any
    ) -> r16.BootNotification:
        return r16.BootNotification(current_time=_now(), interval=300, status="Accepted")

    @on("Heartbeat")
    async def on_heartbeat(self) -> r16.Heartbeat:
        return r16.Heartbeat(current_time=_now())

    @on("StatusNotification")
    async def on_status(
        self, connector_id: int, error_code: str, status: str, **_: Any
    ) -> r16.StatusNotification:
        return r16.StatusNotification()

    @on("Authorize")
    async def on_authorize(self, id_tag: str) -> r16.Authorize:
        return r16.Authorize(id_tag_info={"status": "Accepted"})

    @on("StartTransaction")
    async def on_start(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any
    ) -> r16.StartTransaction:
        return r16.StartTransaction(transaction_id=next(_tx_ids), id_tag_info={"status": "Accepted"})

    @on("StopTransaction")
    async def on_stop(
        self, meter_stop: int, timestamp: str, transaction_id: int, **_: Any
    ) -> r16.StopTransaction:
        return r16.StopTransaction()

    @on("MeterValues")
    async def on_meter(
        self, connector_id: int, meter_value: list[dict[str, Any]], **_: Any
    ) -> r16.MeterValues:
        return r16.MeterValues()


class Baseline201(CP201):
    @on("BootNotification")
    async def on_boot(self, charging_station: dict[str, Any], reason: str, **_: Any) -> r201.BootNotification:
        return r201.BootNotification(current_time=_now(), interval=300, status="Accepted")

    @on("Heartbeat")
    async def on_heartbeat(self) -> r201.Heartbeat:
        return r201.Heartbeat(current_time=_now())

    @on("StatusNotification")
    async def on_status(
        self, timestamp: str, connector_status: str, evse_id: int, connector_id: int, **_: Any
    ) -> r201.StatusNotification:
        return r201.StatusNotification()

    @on("Authorize")
    async def on_authorize(self, id_token: dict[str, Any], **_: Any) -> r201.Authorize:
        return r201.Authorize(id_token_info={"status": "Accepted"})

    @on("TransactionEvent")
    async def on_tx(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict[str, Any],
        **_: Any,
    ) -> r201.TransactionEvent:
        return r201.TransactionEvent()

    @on("MeterValues")
    async def on_meter(self, evse_id: int, meter_value: list[dict[str, Any]]) -> r201.MeterValues:
        return r201.MeterValues()


async def _handler(ws: websockets.ServerConnection) -> None:
    assert ws.request is not None
    station_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
    cp: CP16 | CP201 = (Baseline201 if ws.subprotocol == "ocpp2.0.1" else Baseline16)(station_id, ws)
    with contextlib.suppress(websockets.ConnectionClosed):
        await cp.start()


async def serve(host: str, port: int) -> None:
    async with websockets.serve(
        _handler,
        host,
        port,
        subprotocols=["ocpp2.0.1", "ocpp1.6"],  # type: ignore[list-item]
        compression=None,
        max_size=1 << 20,
    ):
        await asyncio.Future()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
