"""A lean OCPP load generator for throughput and latency benchmarks (run it in its own process).

Each connection boots, starts a transaction, then repeats a realistic mix: 70 % meter values
(1.6 MeterValues / 2.0.1 TransactionEvent Updated, 8 sampled values, ~1 KB), 20 % Heartbeat,
10 % StatusNotification, one call outstanding per connection. ``--rate 0`` saturates (each
connection sends its next call as soon as the previous is answered); ``--rate R`` paces the
whole run at about R calls/s (open loop per connection) to measure latency under load.

    python -m bench.loadgen --url ws://127.0.0.1:9000/ocpp --protocol 1.6 --connections 64 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import websockets

MIX = ["meter"] * 7 + ["heartbeat"] * 2 + ["status"]


def _ts() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _values16(wh: float) -> list[dict[str, Any]]:
    return [
        {
            "value": f"{wh:.1f}",
            "measurand": "Energy.Active.Import.Register",
            "unit": "Wh",
            "context": "Sample.Periodic",
        },
        {"value": "11040", "measurand": "Power.Active.Import", "unit": "W", "context": "Sample.Periodic"},
        {"value": "16.0", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
        {"value": "16.0", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
        {"value": "16.0", "measurand": "Current.Import", "phase": "L3", "unit": "A"},
        {"value": "230.1", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
        {"value": "229.8", "measurand": "Voltage", "phase": "L2-N", "unit": "V"},
        {"value": "54", "measurand": "SoC", "unit": "Percent"},
    ]


def _values201(wh: float) -> list[dict[str, Any]]:
    out = []
    for v in _values16(wh):
        item: dict[str, Any] = {"value": float(v["value"]), "measurand": v["measurand"]}
        if "phase" in v:
            item["phase"] = v["phase"]
        if "context" in v:
            item["context"] = v["context"]
        out.append(item)
    return out


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    failed_connections: int = 0


class Station:
    def __init__(self, url: str, station_id: str, protocol: str) -> None:
        self.url, self.station_id, self.protocol = url, station_id, protocol
        self.ids = itertools.count(1)
        self.wh = 0.0
        self.seq = 0
        self.tx: Any = None

    async def call(
        self, ws: websockets.ClientConnection, action: str, payload: dict[str, Any], stats: Stats | None
    ) -> dict[str, Any]:
        uid = str(next(self.ids))
        started = time.perf_counter()
        await ws.send(orjson.dumps([2, uid, action, payload]).decode())
        while True:
            msg = orjson.loads(await ws.recv())
            if msg[0] == 2:  # a CSMS-initiated call (e.g. a charging profile): accept it
                await ws.send(orjson.dumps([3, msg[1], {"status": "Accepted"}]).decode())
                continue
            if msg[1] == uid:
                break
        if stats is not None:
            stats.latencies.append(time.perf_counter() - started)
            if msg[0] == 4:
                stats.errors += 1
        return msg[2] if msg[0] == 3 else {}

    async def setup(self, ws: websockets.ClientConnection) -> None:
        if self.protocol == "1.6":
            await self.call(
                ws, "BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "L"}, None
            )
            res = await self.call(
                ws,
                "StartTransaction",
                {"connectorId": 1, "idTag": "BENCH", "meterStart": 0, "timestamp": _ts()},
                None,
            )
            self.tx = res.get("transactionId", 1)
        else:
            await self.call(
                ws,
                "BootNotification",
                {"reason": "PowerUp", "chargingStation": {"model": "L", "vendorName": "Bench"}},
                None,
            )
            self.tx = f"{self.station_id}-tx"
            await self.call(
                ws,
                "TransactionEvent",
                {
                    "eventType": "Started",
                    "timestamp": _ts(),
                    "triggerReason": "CablePluggedIn",
                    "seqNo": 0,
                    "transactionInfo": {"transactionId": self.tx},
                    "evse": {"id": 1, "connectorId": 1},
                    "meterValue": [{"timestamp": _ts(), "sampledValue": _values201(0.0)}],
                },
                None,
            )

    def next_call(self, kind: str) -> tuple[str, dict[str, Any]]:
        if kind == "heartbeat":
            return "Heartbeat", {}
        if kind == "status":
            if self.protocol == "1.6":
                return "StatusNotification", {
                    "connectorId": 1,
                    "errorCode": "NoError",
                    "status": "Charging",
                    "timestamp": _ts(),
                }
            return "StatusNotification", {
                "timestamp": _ts(),
                "connectorStatus": "Occupied",
                "evseId": 1,
                "connectorId": 1,
            }
        self.wh += 10.0
        if self.protocol == "1.6":
            return "MeterValues", {
                "connectorId": 1,
                "transactionId": self.tx,
                "meterValue": [{"timestamp": _ts(), "sampledValue": _values16(self.wh)}],
            }
        self.seq += 1
        return "TransactionEvent", {
            "eventType": "Updated",
            "timestamp": _ts(),
            "triggerReason": "MeterValuePeriodic",
            "seqNo": self.seq,
            "transactionInfo": {"transactionId": self.tx},
            "meterValue": [{"timestamp": _ts(), "sampledValue": _values201(self.wh)}],
        }

    async def run(self, deadline: float, warmup_end: float, interval: float, stats: Stats) -> None:
        sub = "ocpp1.6" if self.protocol == "1.6" else "ocpp2.0.1"
        try:
            async with websockets.connect(
                f"{self.url}/{self.station_id}",
                subprotocols=[sub],  # type: ignore[list-item]
                compression=None,
                open_timeout=30,
                ping_interval=None,
            ) as ws:
                await self.setup(ws)
                mix = itertools.cycle(random.sample(MIX, len(MIX)))
                next_at = time.perf_counter() + random.random() * interval
                while (now := time.perf_counter()) < deadline:
                    if interval:
                        if next_at > now:
                            await asyncio.sleep(next_at - now)
                        next_at += interval
                    action, payload = self.next_call(next(mix))
                    await self.call(ws, action, payload, stats if time.perf_counter() >= warmup_end else None)
        except (OSError, websockets.WebSocketException, TimeoutError):
            stats.failed_connections += 1


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def run(
    url: str, protocol: str, connections: int, duration: float, rate: float, warmup: float, prefix: str
) -> dict[str, Any]:
    stats = Stats()
    start = time.perf_counter()
    deadline = start + warmup + duration
    interval = connections / rate if rate > 0 else 0.0
    stations = [Station(url, f"{prefix}{i:05d}", protocol) for i in range(connections)]
    cpu0 = time.process_time()
    await asyncio.gather(*(s.run(deadline, start + warmup, interval, stats) for s in stations))
    lat = sorted(stats.latencies)
    measured = min(duration, max(1e-9, time.perf_counter() - start - warmup))
    return {
        "protocol": protocol,
        "connections": connections,
        "target_rate": rate,
        "duration_s": round(measured, 2),
        "calls": len(lat),
        "calls_per_s": round(len(lat) / measured, 1),
        "errors": stats.errors,
        "failed_connections": stats.failed_connections,
        "p50_ms": round(percentile(lat, 0.50) * 1000, 2),
        "p90_ms": round(percentile(lat, 0.90) * 1000, 2),
        "p99_ms": round(percentile(lat, 0.99) * 1000, 2),
        "max_ms": round((lat[-1] if lat else 0) * 1000, 2),
        "loadgen_cpu_us_per_call": round((time.process_time() - cpu0) / max(1, len(lat)) * 1e6, 1),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="OCPP base URL, e.g. ws://127.0.0.1:9000/ocpp")
    p.add_argument("--protocol", choices=["1.6", "2.0.1"], default="1.6")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds (after warm-up)")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--rate", type=float, default=0.0, help="total calls/s; 0 = saturate")
    p.add_argument("--prefix", default="LG")
    args = p.parse_args(argv)
    try:
        import uvloop

        result = uvloop.run(
            run(args.url, args.protocol, args.connections, args.duration, args.rate, args.warmup, args.prefix)
        )
    except ImportError:
        result = asyncio.run(
            run(args.url, args.protocol, args.connections, args.duration, args.rate, args.warmup, args.prefix)
        )
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
