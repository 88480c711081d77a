"""A raw OCPP-J station over a real websocket (plain ``websockets`` + JSON frames), for telemetry tests."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson
import websockets


def iso(ts: datetime | None = None) -> str:
    return (ts or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RawStation:
    """A bare OCPP-J client: sends CALLs as JSON frames and awaits their CALLRESULT."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        uid = f"t{next(self._ids)}"
        await self.ws.send(orjson.dumps([2, uid, action, payload]).decode())
        async with asyncio.timeout(10):
            while True:
                frame = orjson.loads(await self.ws.recv())
                if frame[0] == 2:  # a CSMS-initiated call (e.g. from the balancer): refuse politely
                    await self.ws.send(orjson.dumps([4, frame[1], "NotImplemented", "", {}]).decode())
                    continue
                if frame[1] == uid:
                    if frame[0] != 3:
                        raise AssertionError(f"{action} answered with {frame}")
                    return dict(frame[2])


async def open_station(ocpp_url: str, station_id: str, protocol: str) -> RawStation:
    ws = await websockets.connect(f"{ocpp_url}/{quote(station_id, safe='')}", subprotocols=[protocol])  # type: ignore[list-item]
    return RawStation(ws)


def sampled_16(power_w: float, energy_wh: float, soc: float, current_a: float) -> list[dict[str, Any]]:
    """A realistic 1.6 sampledValue list: kWh register, kW power, per-phase current and voltage, SoC."""
    out: list[dict[str, Any]] = [
        {"measurand": "Energy.Active.Import.Register", "unit": "kWh", "value": f"{energy_wh / 1000:.3f}",
         "context": "Sample.Periodic"},
        {"measurand": "Power.Active.Import", "unit": "kW", "value": f"{power_w / 1000:.3f}",
         "context": "Sample.Periodic"},
        {"measurand": "SoC", "unit": "Percent", "value": f"{soc:.0f}", "location": "EV",
         "context": "Sample.Periodic"},
    ]
    for phase in ("L1", "L2", "L3"):
        out.append({"measurand": "Current.Import", "unit": "A", "phase": phase, "value": f"{current_a:.1f}",
                    "context": "Sample.Periodic"})
        out.append({"measurand": "Voltage", "unit": "V", "phase": f"{phase}-N", "value": "230.0",
                    "context": "Sample.Periodic"})
    return out


def sampled_201(power_w: float, energy_wh: float, soc: float, current_a: float) -> list[dict[str, Any]]:
    """The same readings in 2.0.1 form (unitOfMeasure with a multiplier for kWh)."""
    out: list[dict[str, Any]] = [
        {"measurand": "Energy.Active.Import.Register", "value": energy_wh / 1000,
         "unitOfMeasure": {"unit": "Wh", "multiplier": 3}, "context": "Sample.Periodic"},
        {"measurand": "Power.Active.Import", "value": power_w, "unitOfMeasure": {"unit": "W"},
         "context": "Sample.Periodic"},
        {"measurand": "SoC", "value": soc, "location": "EV", "context": "Sample.Periodic"},
    ]
    for phase in ("L1", "L2", "L3"):
        out.append({"measurand": "Current.Import", "phase": phase, "value": current_a,
                    "context": "Sample.Periodic"})
        out.append({"measurand": "Voltage", "phase": f"{phase}-N", "value": 230.0,
                    "context": "Sample.Periodic"})
    return out


async def drive_v16(ocpp_url: str, station_id: str, *, samples: int = 4) -> None:
    """Boot, status, a whole charging session with meter values, stop; over a real websocket."""
    st = await open_station(ocpp_url, station_id, "ocpp1.6")
    try:
        await st.call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "AC22",
                                           "firmwareVersion": "1.2.3"})
        await st.call("StatusNotification", {"connectorId": 1, "status": "Available", "errorCode": "NoError",
                                             "timestamp": iso()})
        await st.call("StatusNotification", {"connectorId": 1, "status": "Preparing", "errorCode": "NoError"})
        start = await st.call("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 1000,
                                                   "timestamp": iso()})
        tx = start["transactionId"]
        await st.call("StatusNotification", {"connectorId": 1, "status": "Charging", "errorCode": "NoError"})
        energy = 1000.0
        for i in range(samples):
            energy += 250.0
            await st.call("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [
                {"timestamp": iso(), "sampledValue": sampled_16(11000 - 100 * i, energy, 40 + i, 16.0)}]})
            await asyncio.sleep(0.02)
        await st.call("StopTransaction", {"transactionId": tx, "meterStop": int(energy), "timestamp": iso(),
                                          "reason": "EVDisconnected"})
        await st.call("StatusNotification", {"connectorId": 1, "status": "Finishing", "errorCode": "NoError"})
        await st.call("Heartbeat", {})
    finally:
        await st.ws.close()


async def drive_v201(ocpp_url: str, station_id: str, *, samples: int = 4) -> None:
    """The same session as a 2.0.1 station (TransactionEvent Started/Updated/Ended)."""
    st = await open_station(ocpp_url, station_id, "ocpp2.0.1")
    try:
        await st.call("BootNotification", {"reason": "PowerUp", "chargingStation": {
            "vendorName": "Volt", "model": "DC50", "firmwareVersion": "2.0"}})
        await st.call("StatusNotification", {"timestamp": iso(), "connectorStatus": "Available", "evseId": 1,
                                             "connectorId": 1})
        tx = {"transactionId": f"{station_id}-tx1"}
        seq = itertools.count()
        energy = 5000.0
        await st.call("TransactionEvent", {
            "eventType": "Started", "timestamp": iso(), "triggerReason": "Authorized", "seqNo": next(seq),
            "transactionInfo": tx, "evse": {"id": 1, "connectorId": 1}, "idToken": {"idToken": "TAG2",
                                                                                    "type": "ISO14443"},
            "meterValue": [{"timestamp": iso(), "sampledValue": sampled_201(0, energy, 20, 0)}]})
        await st.call("StatusNotification", {"timestamp": iso(), "connectorStatus": "Occupied", "evseId": 1,
                                             "connectorId": 1})
        for i in range(samples):
            energy += 400.0
            await st.call("TransactionEvent", {
                "eventType": "Updated", "timestamp": iso(), "triggerReason": "MeterValuePeriodic",
                "seqNo": next(seq), "transactionInfo": {**tx, "chargingState": "Charging"},
                "meterValue": [{"timestamp": iso(),
                                "sampledValue": sampled_201(48000, energy, 21 + i, 70.0)}]})
            later = datetime.now(UTC) + timedelta(milliseconds=5)  # InfluxDB keeps one point per series
            await st.call("MeterValues", {"evseId": 1, "meterValue": [  # and instant: never the same ms
                {"timestamp": iso(later), "sampledValue": sampled_201(47000, energy + 1, 21 + i, 69.0)}]})
            await asyncio.sleep(0.02)
        await st.call("TransactionEvent", {
            "eventType": "Ended", "timestamp": iso(), "triggerReason": "EVDeparted", "seqNo": next(seq),
            "transactionInfo": {**tx, "stoppedReason": "EVDisconnected"},
            "meterValue": [{"timestamp": iso(), "sampledValue": sampled_201(0, energy + 10, 30, 0),
                            }]})
        await st.call("Heartbeat", {})
    finally:
        await st.ws.close()


async def wait_until(predicate: Any, timeout_s: float = 15.0, interval_s: float = 0.1) -> None:
    """Poll ``predicate()`` (sync or async) until true; AssertionError after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(interval_s)
