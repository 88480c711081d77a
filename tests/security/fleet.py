"""Normal charging sessions that run beside the fuzzer: plain websockets stations doing
boot, status, start, meter values and stop, recording every transaction the CSMS confirmed."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

import orjson
import websockets
from websockets.typing import Subprotocol

NOW = "2026-03-01T12:00:00Z"


@dataclass
class FleetReport:
    confirmed: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # station -> (tx, stop Wh)
    calls: int = 0
    failures: list[str] = field(default_factory=list)  # unanswered or refused CALLs


class _Station:
    def __init__(self, ws: websockets.ClientConnection, station_id: str, report: FleetReport) -> None:
        self.ws, self.station_id, self.report = ws, station_id, report
        self._ids = itertools.count(1)

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        uid = f"n{next(self._ids)}"
        self.report.calls += 1
        await self.ws.send(orjson.dumps([2, uid, action, payload]).decode())
        try:
            frame = orjson.loads(await asyncio.wait_for(self.ws.recv(), 10))
        except (TimeoutError, websockets.ConnectionClosed) as exc:
            self.report.failures.append(f"{self.station_id} {action}: {exc!r}")
            return None
        if frame[0] != 3 or frame[1] != uid:
            self.report.failures.append(f"{self.station_id} {action}: {frame!r}"[:300])
            return None
        result: dict[str, Any] = frame[2]
        return result


async def _cycle16(st: _Station, k: int) -> tuple[str, float] | None:
    start_wh = 1000 * k
    started = await st.call("StartTransaction", {
        "connectorId": 1, "idTag": "FLEET", "meterStart": start_wh,
        "timestamp": f"2026-03-01T12:{k:02d}:00Z",
    })
    if started is None:
        return None
    tx = started["transactionId"]
    for i in range(2):
        sample = {"value": str(start_wh + 100 * (i + 1)), "measurand": "Energy.Active.Import.Register",
                  "unit": "Wh"}
        await st.call("MeterValues", {"connectorId": 1, "transactionId": tx,
                                      "meterValue": [{"timestamp": NOW, "sampledValue": [sample]}]})
    stop_wh = start_wh + 300.0
    stopped = await st.call("StopTransaction", {
        "transactionId": tx, "meterStop": int(stop_wh), "timestamp": f"2026-03-01T12:{k:02d}:30Z"})
    return (str(tx), stop_wh) if stopped is not None else None


def _energy(wh: float) -> list[dict[str, Any]]:
    return [{"timestamp": NOW, "sampledValue": [{"value": wh, "measurand": "Energy.Active.Import.Register"}]}]


async def _cycle201(st: _Station, k: int) -> tuple[str, float] | None:
    tx = f"{st.station_id}-{k}"
    start_wh, stop_wh = 1000.0 * k, 1000.0 * k + 300
    steps = [("Started", "Authorized", start_wh), ("Updated", "MeterValuePeriodic", start_wh + 100),
             ("Ended", "StopAuthorized", stop_wh)]
    for seq, (event, trigger, wh) in enumerate(steps):
        payload: dict[str, Any] = {
            "eventType": event, "timestamp": f"2026-03-01T12:{k:02d}:{seq:02d}Z", "triggerReason": trigger,
            "seqNo": seq, "transactionInfo": {"transactionId": tx}, "evse": {"id": 1, "connectorId": 1},
            "meterValue": _energy(wh),
        }
        if event == "Started":
            payload["idToken"] = {"idToken": "FLEET", "type": "ISO14443"}
        if event == "Ended":
            payload["transactionInfo"]["stoppedReason"] = "Local"
        if await st.call("TransactionEvent", payload) is None:
            return None
    return tx, stop_wh


async def run_station(url: str, station_id: str, version: str, report: FleetReport, stop: asyncio.Event,
                      min_cycles: int = 2) -> None:
    async with websockets.connect(
        f"{url}/{station_id}", subprotocols=[Subprotocol(version)], ping_interval=None
    ) as ws:
        st = _Station(ws, station_id, report)
        if version == "ocpp1.6":
            await st.call("BootNotification", {"chargePointVendor": "Fleet", "chargePointModel": "F1"})
            await st.call("StatusNotification",
                          {"connectorId": 1, "errorCode": "NoError", "status": "Available"})
        else:
            await st.call("BootNotification", {"reason": "PowerUp",
                                               "chargingStation": {"model": "F2", "vendorName": "Fleet"}})
            await st.call("StatusNotification", {"timestamp": NOW, "connectorStatus": "Available",
                                                 "evseId": 1, "connectorId": 1})
        done = report.confirmed.setdefault(station_id, [])
        for k in itertools.count(1):
            if (k > min_cycles and stop.is_set()) or k > 59:
                break
            confirmed = await (_cycle16(st, k) if version == "ocpp1.6" else _cycle201(st, k))
            if confirmed is not None:
                done.append(confirmed)
            await asyncio.sleep(0.2)


async def run_fleet(url: str, count: int, report: FleetReport, stop: asyncio.Event) -> None:
    await asyncio.gather(*(
        run_station(url, f"FLEET-{i:02d}", "ocpp1.6" if i % 2 else "ocpp2.0.1", report, stop)
        for i in range(count)
    ))
