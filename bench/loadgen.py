"""A lean OCPP load generator, run in its own process (pinned to the other core).

Two modes:

``throughput`` (default): each connection boots, starts a transaction, then repeats a
realistic mix: 70 % meter values (1.6 MeterValues / 2.0.1 TransactionEvent Updated, 8 sampled
values, ~1 KB), 20 % Heartbeat, 10 % StatusNotification, one call outstanding per connection.
All connections are opened first; the clock starts when every one has booted. ``--rate 0``
saturates (closed loop: the next call leaves as soon as the previous is answered);
``--rate R`` paces the whole run at about R calls/s (open loop per connection) and measures
latency from each call's *scheduled* time, so a slow server is not hidden by the generator
waiting for it (no coordinated omission). Prints one JSON line.

    python -m bench.loadgen --url ws://127.0.0.1:9000/ocpp --protocol 1.6 --connections 64 --duration 10

``hold``: holds many stations and obeys JSON-line commands on stdin, answering each with one
JSON line on stdout (driven by ``bench.capacity`` and ``bench.reconnect``)::

    {"cmd": "connect", "total": N, "rate": 190, "tx": false}   open stations up to N (boot + status)
    {"cmd": "start_tx", "share": 1.0, "rate": 200}   start transactions on idle stations
    {"cmd": "traffic", "seconds": S, "meter_s": 60, "heartbeat_s": 300}   periodic calls for S s
    {"cmd": "wait_back", "since": T, "timeout_s": 120}   after a server kill at monotonic T
    {"cmd": "transactions"}   the acknowledged (station, transaction id) pairs
    {"cmd": "quit"}

Stations that lose their connection reconnect on their own with the OCPP 2.0.1 back-off
(``RetryBackOffWaitMinimum * 2**n + random(RetryBackOffRandomRange)``, n capped at
``RetryBackOffRepeatTimes``); an HTTP 503's ``Retry-After`` is a floor. Connections are spread
over source addresses 127.0.0.2... (``--source-ips``) for ephemeral ports and per-IP limits.

``wss://`` URLs (hold mode): ``--ca-file`` is the CA the CSMS's certificate must chain to;
``--client-ca-cert``/``--client-ca-key`` give every station its own client certificate (CN =
station id, issued here; security profile 3); ``--password`` with TLS is profile 2.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import heapq
import itertools
import random
import ssl
import sys
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus, WebSocketException

from simulators.runtime import raise_nofile
from simulators.security import Endpoints, SecurityOptions

MIX = ["meter"] * 7 + ["heartbeat"] * 2 + ["status"]


def source_addresses(n: int) -> list[str | None]:
    """``n`` loopback source addresses 127.0.0.2..; ``[None]`` (kernel's choice) when n < 1."""
    return [f"127.0.0.{2 + i}" for i in range(min(n, 250))] or [None]


_ts_cache: list[Any] = [0, ""]


def _ts() -> str:
    """The current UTC time in RFC 3339, formatted once per second (the generator's own cost)."""
    now = int(time.time())
    if _ts_cache[0] != now:
        _ts_cache[:] = [now, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))]
    return str(_ts_cache[1])


_SAMPLES16_REST: list[dict[str, Any]] = [
    {"value": "11040", "measurand": "Power.Active.Import", "unit": "W", "context": "Sample.Periodic"},
    {"value": "16.0", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
    {"value": "16.0", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
    {"value": "16.0", "measurand": "Current.Import", "phase": "L3", "unit": "A"},
    {"value": "230.1", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
    {"value": "229.8", "measurand": "Voltage", "phase": "L2-N", "unit": "V"},
    {"value": "54", "measurand": "SoC", "unit": "Percent"},
]


def _values16(wh: float) -> list[dict[str, Any]]:
    """Eight sampled values (~1 KB as JSON); only the energy register changes between calls."""
    energy = {
        "value": f"{wh:.1f}", "measurand": "Energy.Active.Import.Register", "unit": "Wh",
        "context": "Sample.Periodic",
    }
    return [energy, *_SAMPLES16_REST]


def _as201(v: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"value": float(v["value"]), "measurand": v["measurand"]}
    if "phase" in v:
        item["phase"] = v["phase"]
    if "context" in v:
        item["context"] = v["context"]
    return item


_SAMPLES201_REST = [_as201(v) for v in _SAMPLES16_REST]


def _values201(wh: float) -> list[dict[str, Any]]:
    energy = {
        "value": round(wh, 1), "measurand": "Energy.Active.Import.Register", "context": "Sample.Periodic",
    }
    return [energy, *_SAMPLES201_REST]


def _stalls(slow: list[tuple[float, float]], t0: float) -> list[list[float]]:
    """Episodes of calls over 50 ms: [start s after t0, calls, worst ms], up to 10."""
    out: list[list[float]] = []
    for at, lat in sorted(slow):
        if out and at - t0 - out[-1][0] < 0.5:
            out[-1][1] += 1
            out[-1][2] = max(out[-1][2], round(lat * 1000))
        else:
            out.append([round(at - t0, 2), 1, round(lat * 1000)])
    return sorted(out, key=lambda e: -e[2])[:10]


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def latency_summary(latencies: list[float]) -> dict[str, float]:
    lat = sorted(latencies)
    return {
        "p50_ms": round(percentile(lat, 0.50) * 1000, 2),
        "p90_ms": round(percentile(lat, 0.90) * 1000, 2),
        "p99_ms": round(percentile(lat, 0.99) * 1000, 2),
        "max_ms": round((lat[-1] if lat else 0.0) * 1000, 2),
    }


# --- connecting ---------------------------------------------------------------------------
class Refused(Exception):
    """A connection attempt failed; ``reason`` names why, ``retry_after`` is the server's hint."""

    def __init__(self, reason: str, retry_after: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Backoff:
    """OCPP 2.0.1 reconnect back-off; a 503's Retry-After is a floor."""

    wait_min_s: float = 1.0
    random_range_s: float = 5.0
    repeat_times: int = 5

    def delay(self, attempt: int, retry_after: float = 0.0) -> float:
        d: float = self.wait_min_s * 2.0 ** min(attempt, self.repeat_times)
        return max(d + random.uniform(0, self.random_range_s), retry_after)


FAST_BACKOFF = Backoff(0.05, 0.2, 4)  # opening connections for a benchmark, not a storm


async def open_ws(
    url: str, station_id: str, protocol: str, local_ip: str | None, open_timeout: float = 30.0,
    password: str | None = None, tls: ssl.SSLContext | None = None,
) -> ClientConnection:
    """One WebSocket to ``url/station_id`` (HTTP Basic auth when ``password`` is given);
    raises ``Refused`` on any failure."""
    extra: dict[str, Any] = {"local_addr": (local_ip, 0)} if local_ip else {}
    if tls is not None:
        extra["ssl"] = tls
    if password is not None:
        token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
        extra["additional_headers"] = {"Authorization": f"Basic {token}"}
    try:
        return await websockets.connect(
            f"{url}/{station_id}",
            subprotocols=["ocpp1.6" if protocol == "1.6" else "ocpp2.0.1"],  # type: ignore[list-item]
            compression=None,
            open_timeout=open_timeout,
            ping_interval=None,
            close_timeout=2,
            proxy=None,
            **extra,
        )
    except InvalidStatus as exc:
        hint = exc.response.headers.get("Retry-After", "0")
        raise Refused(f"http_{exc.response.status_code}", float(hint) if hint.isdigit() else 0.0) from None
    except (OSError, TimeoutError, WebSocketException, EOFError) as exc:
        raise Refused(type(exc).__name__) from None


# --- OCPP payloads ------------------------------------------------------------------------
class Ocpp:
    """Payloads of one station (message ids, meter register, transaction)."""

    def __init__(self, station_id: str, protocol: str) -> None:
        self.station_id, self.protocol = station_id, protocol
        self.ids = itertools.count(1)
        self.wh = 0.0
        self.seq = 0
        self.tx: Any = None

    def frame(self, action: str, payload: dict[str, Any]) -> tuple[str, str]:
        uid = str(next(self.ids))
        return uid, orjson.dumps([2, uid, action, payload]).decode()

    def boot(self) -> tuple[str, dict[str, Any]]:
        if self.protocol == "1.6":
            return "BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "L"}
        station = {"model": "L", "vendorName": "Bench"}
        return "BootNotification", {"reason": "PowerUp", "chargingStation": station}

    def start(self) -> tuple[str, dict[str, Any]]:
        if self.protocol == "1.6":
            return "StartTransaction", {
                "connectorId": 1, "idTag": "BENCH", "meterStart": 0, "timestamp": _ts(),
            }
        self.tx = f"{self.station_id}-tx"
        return "TransactionEvent", {
            "eventType": "Started",
            "timestamp": _ts(),
            "triggerReason": "CablePluggedIn",
            "seqNo": 0,
            "transactionInfo": {"transactionId": self.tx},
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": [{"timestamp": _ts(), "sampledValue": _values201(0.0)}],
        }

    def started(self, result: dict[str, Any]) -> None:
        if self.protocol == "1.6":
            self.tx = result.get("transactionId")

    def heartbeat(self) -> tuple[str, dict[str, Any]]:
        return "Heartbeat", {}

    def status(self, charging: bool = True) -> tuple[str, dict[str, Any]]:
        if self.protocol == "1.6":
            return "StatusNotification", {
                "connectorId": 1,
                "errorCode": "NoError",
                "status": "Charging" if charging else "Available",
                "timestamp": _ts(),
            }
        return "StatusNotification", {
            "timestamp": _ts(),
            "connectorStatus": "Occupied" if charging else "Available",
            "evseId": 1,
            "connectorId": 1,
        }

    def meter(self) -> tuple[str, dict[str, Any]]:
        self.wh += 10.0
        if self.protocol == "1.6":
            payload: dict[str, Any] = {
                "connectorId": 1,
                "meterValue": [{"timestamp": _ts(), "sampledValue": _values16(self.wh)}],
            }
            if self.tx is not None:
                payload["transactionId"] = self.tx
            return "MeterValues", payload
        if self.tx is None:
            return "MeterValues", {
                "evseId": 1,
                "meterValue": [{"timestamp": _ts(), "sampledValue": _values201(self.wh)}],
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

    def next_call(self, kind: str) -> tuple[str, dict[str, Any]]:
        if kind == "heartbeat":
            return self.heartbeat()
        if kind == "status":
            return self.status()
        return self.meter()


async def call(ws: ClientConnection, o: Ocpp, action: str, payload: dict[str, Any]) -> list[Any]:
    """Send one CALL and return its answer frame (CSMS-initiated calls are accepted meanwhile)."""
    uid, text = o.frame(action, payload)
    await ws.send(text)
    while True:
        msg = orjson.loads(await ws.recv())
        if msg[0] == 2:
            await ws.send(orjson.dumps([3, msg[1], {"status": "Accepted"}]).decode())
        elif msg[1] == uid:
            return list(msg)


# --- throughput mode ----------------------------------------------------------------------
@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # from the scheduled send time
    service: list[float] = field(default_factory=list)  # from the actual send time
    lags: list[float] = field(default_factory=list)  # actual - scheduled send time
    errors: int = 0
    failed_connections: int = 0
    attempts: Counter[str] = field(default_factory=Counter)


async def _open_booted(
    url: str, o: Ocpp, ip: str | None, gate: asyncio.Semaphore, stats: Stats, give_up_at: float
) -> ClientConnection | None:
    attempt = 0
    while True:
        async with gate:
            try:
                ws = await open_ws(url, o.station_id, o.protocol, ip)
                await call(ws, o, *o.boot())
                answer = await call(ws, o, *o.start())
                if answer[0] == 3:
                    o.started(answer[2])
                return ws
            except Refused as exc:
                stats.attempts[exc.reason] += 1
                retry_after = exc.retry_after
            except (OSError, WebSocketException) as exc:
                stats.attempts[type(exc).__name__] += 1
                retry_after = 0.0
        if time.monotonic() > give_up_at:
            stats.failed_connections += 1
            return None
        await asyncio.sleep(FAST_BACKOFF.delay(attempt, retry_after))
        attempt += 1


async def _drive(
    ws: ClientConnection, o: Ocpp, deadline: float, warmup_end: float, interval: float, stats: Stats
) -> None:
    mix = itertools.cycle(random.sample(MIX, len(MIX)))
    next_at = time.perf_counter() + random.random() * interval
    try:
        while (now := time.perf_counter()) < deadline:
            scheduled = now
            if interval:
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                scheduled = next_at
                next_at += interval
            sent = time.perf_counter()
            answer = await call(ws, o, *o.next_call(next(mix)))
            if scheduled >= warmup_end:
                done = time.perf_counter()
                stats.latencies.append(done - scheduled)
                stats.service.append(done - sent)
                stats.lags.append(sent - scheduled)
                if answer[0] == 4:
                    stats.errors += 1
    except (OSError, WebSocketException):
        stats.failed_connections += 1


async def _marks(window_start: float, window_end: float) -> None:
    """Tell the parent when the measured window starts and ends (it samples the server then)."""
    await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
    _emit({"event": "window_start"})
    await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
    _emit({"event": "window_end"})


async def run_throughput(
    url: str, protocol: str, connections: int, duration: float, rate: float, warmup: float,
    prefix: str, ips: int,
) -> dict[str, Any]:
    stats = Stats()
    addrs = source_addresses(ips)
    gate = asyncio.Semaphore(32)
    t_open = time.perf_counter()
    stations = [Ocpp(f"{prefix}{i:05d}", protocol) for i in range(connections)]
    socks = await asyncio.gather(
        *(_open_booted(url, o, addrs[i % len(addrs)], gate, stats, time.monotonic() + 60)
          for i, o in enumerate(stations))
    )
    open_s = time.perf_counter() - t_open
    live = [(ws, o) for ws, o in zip(socks, stations, strict=True) if ws is not None]
    gc.collect()
    gc.freeze()
    interval = len(live) / rate if rate > 0 else 0.0
    start = time.perf_counter()
    deadline = start + warmup + duration
    marks = asyncio.get_running_loop().create_task(_marks(start + warmup, deadline))
    cpu0 = time.process_time()
    await asyncio.gather(*(_drive(ws, o, deadline, start + warmup, interval, stats) for ws, o in live))
    cpu = time.process_time() - cpu0
    await marks
    measured = min(duration, max(1e-9, time.perf_counter() - start - warmup))
    await asyncio.gather(*(ws.close() for ws, _ in live), return_exceptions=True)
    return {
        "protocol": protocol,
        "connections": len(live),
        "target_rate": rate,
        "duration_s": round(measured, 2),
        "open_s": round(open_s, 2),
        "calls": len(stats.latencies),
        "calls_per_s": round(len(stats.latencies) / measured, 1),
        "errors": stats.errors,
        "failed_connections": stats.failed_connections,
        "refused_attempts": dict(stats.attempts),
        **latency_summary(stats.latencies),
        "svc_p99_ms": round(percentile(sorted(stats.service), 0.99) * 1000, 2),
        "lag_p99_ms": round(percentile(sorted(stats.lags), 0.99) * 1000, 2),
        "loadgen_cpu_us_per_call": round(cpu / max(1, len(stats.latencies)) * 1e6, 1),
        "loadgen_cpu_util": round(cpu / (warmup + duration), 2),
    }


# --- hold mode ----------------------------------------------------------------------------
class HoldStation:
    """One held station: connects, boots, answers, reconnects after losing its connection."""

    __slots__ = ("action", "attempts", "back_at", "charging", "connects", "down_at", "fleet", "ip", "o",
                 "sent_at", "task", "uid", "want_tx", "ws")

    def __init__(self, fleet: Fleet, station_id: str, protocol: str, ip: str | None, want_tx: bool) -> None:
        self.fleet = fleet
        self.o = Ocpp(station_id, protocol)
        self.ip = ip
        self.ws: ClientConnection | None = None
        self.uid: str | None = None  # the outstanding call sent by the scheduler
        self.sent_at = 0.0
        self.action = ""
        self.back_at = 0.0  # monotonic time the station was last (re)connected and answered
        self.down_at = 0.0
        self.connects = 0
        self.attempts = 0
        self.charging = False
        self.want_tx = want_tx
        self.task: asyncio.Task[None] | None = None

    async def life(self) -> None:
        f = self.fleet
        attempt = 0
        while not f.closing:
            retry_after = 0.0
            try:
                if self.connects == 0:
                    await f.ramp_slot()
                self.attempts += 1
                sid = self.o.station_id
                ws = await open_ws(f.url, sid, self.o.protocol, self.ip, f.open_timeout, f.password,
                                   f.endpoints.ssl_for(sid, f.url))
            except Refused as exc:
                f.refused[exc.reason] += 1
                retry_after = exc.retry_after
            else:
                try:
                    await self.setup(ws)
                except (OSError, WebSocketException) as exc:
                    f.refused[f"setup_{type(exc).__name__}"] += 1
                else:
                    attempt = 0
                    await self.serve(ws)
                    self.down_at = time.monotonic()
                    f.disconnects += 1
                with contextlib.suppress(Exception):
                    ws.transport.abort()
            if f.closing:
                return
            policy = f.backoff if self.connects else FAST_BACKOFF
            await asyncio.sleep(policy.delay(attempt, retry_after))
            attempt += 1

    async def setup(self, ws: ClientConnection) -> None:
        o = self.o
        if self.connects == 0:
            await call(ws, o, *o.boot())
            if self.want_tx:
                answer = await call(ws, o, *o.start())
                if answer[0] == 3:
                    o.started(answer[2])
                    self.charging = True
                    self.fleet.acked.append((o.station_id, str(o.tx)))
            await call(ws, o, *o.status(self.charging))
        else:  # a reconnection, not a reboot: report the connector, then carry on
            await call(ws, o, *o.status(self.charging))
        self.connects += 1
        self.back_at = time.monotonic()
        self.ws = ws
        self.fleet.connected += 1

    async def serve(self, ws: ClientConnection) -> None:
        """Read answers to the scheduler's calls until the connection closes."""
        f = self.fleet
        try:
            async for raw in ws:
                msg = orjson.loads(raw)
                if msg[0] == 2:
                    await ws.send(orjson.dumps([3, msg[1], {"status": "Accepted"}]).decode())
                    continue
                if msg[1] != self.uid:
                    continue
                self.uid = None
                f.answered(time.perf_counter() - self.sent_at, msg[0] == 4)
                starting = self.action in ("StartTransaction", "TransactionEvent") and not self.charging
                if msg[0] == 3 and starting:
                    self.o.started(msg[2])
                    self.charging = True
        except (OSError, WebSocketException):
            pass
        finally:
            self.ws = None
            self.uid = None
            f.connected -= 1

    async def fire(self, kind: str) -> bool:
        """Send one scheduled call; False when the station cannot send now."""
        ws = self.ws
        if ws is None or self.uid is not None:
            return False
        o = self.o
        action, payload = o.start() if kind == "start" else o.next_call(kind)
        uid, text = o.frame(action, payload)
        self.uid, self.action, self.sent_at = uid, action, time.perf_counter()
        try:
            await ws.send(text)
        except (OSError, WebSocketException):
            self.uid = None
            return False
        self.fleet.sent += 1
        return True


class Fleet:
    """Stations held by this process and the command loop that drives them."""

    def __init__(self, url: str, protocol: str, prefix: str, ips: int, backoff: Backoff,
                 open_timeout: float, password: str | None = None,
                 security: SecurityOptions | None = None) -> None:
        self.url, self.protocol, self.prefix = url, protocol, prefix
        self.password = password
        self.endpoints = Endpoints([url], security)
        self.addrs = source_addresses(ips)
        self.backoff = backoff
        self.open_timeout = open_timeout
        self.stations: list[HoldStation] = []
        self.closing = False
        self.connected = 0
        self.disconnects = 0
        self.sent = 0
        self.refused: Counter[str] = Counter()
        self.acked: list[tuple[str, str]] = []
        self.latencies: list[float] = []
        self.slow: list[tuple[float, float]] = []  # (sent at, latency) of calls over 50 ms
        self.errors = 0
        self._ramp_rate = 0.0
        self._ramp_next = 0.0
        self._ramp_lock = asyncio.Lock()

    def answered(self, latency: float, error: bool) -> None:
        self.latencies.append(latency)
        if latency > 0.05:
            self.slow.append((time.monotonic() - latency, latency))
        if error:
            self.errors += 1

    async def ramp_slot(self) -> None:
        """Pace first connection attempts at ``_ramp_rate`` per second (0 = no pacing)."""
        if self._ramp_rate <= 0:
            return
        async with self._ramp_lock:
            now = time.monotonic()
            wait = self._ramp_next - now
            self._ramp_next = max(now, self._ramp_next) + 1.0 / self._ramp_rate
        if wait > 0:
            await asyncio.sleep(wait)

    def _protocol_of(self, i: int) -> str:
        if self.protocol == "mixed":
            return "1.6" if i % 2 == 0 else "2.0.1"
        return self.protocol

    async def connect(self, total: int, rate: float, tx: bool, timeout_s: float) -> dict[str, Any]:
        t0 = time.monotonic()
        self._ramp_rate, self._ramp_next = rate, t0
        refused0 = Counter(self.refused)
        while len(self.stations) < total:
            i = len(self.stations)
            ip = self.addrs[i % len(self.addrs)]
            st = HoldStation(self, f"{self.prefix}{i:06d}", self._protocol_of(i), ip, tx)
            st.task = asyncio.get_running_loop().create_task(st.life())
            self.stations.append(st)
        while self.connected < total and time.monotonic() - t0 < timeout_s:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - t0
        gc.collect()
        gc.freeze()
        return {
            "event": "connected", "target": total, "connected": self.connected,
            "elapsed_s": round(elapsed, 2),
            "attempts": sum(s.attempts for s in self.stations),
            "refused": dict(self.refused - refused0), "acked_tx": len(self.acked),
        }

    async def start_transactions(self, share: float, rate: float, timeout_s: float) -> dict[str, Any]:
        """Start a transaction on ``share`` of the idle stations, ``rate`` per second."""
        self.latencies, self.errors = [], 0
        t0 = time.monotonic()
        todo = [s for s in self.stations if s.ws is not None and not s.charging and random.random() < share]
        for i, st in enumerate(todo):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()) if rate > 0 else 0.0)
            while st.ws is not None and not await st.fire("start"):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        while any(s.uid is not None for s in todo) and time.monotonic() - t0 < timeout_s:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return {
            "event": "started", "started": sum(1 for s in todo if s.charging), "of": len(todo),
            "elapsed_s": round(time.monotonic() - t0, 2), "errors": self.errors,
            **latency_summary(self.latencies),
        }

    async def traffic(self, seconds: float, meter_s: float, heartbeat_s: float) -> dict[str, Any]:
        """Meter values every ``meter_s`` and heartbeats every ``heartbeat_s`` per station, random phase."""
        self.latencies, self.errors, self.slow = [], 0, []
        sent0, disc0 = self.sent, self.disconnects
        now = time.monotonic()
        end = now + seconds
        heap: list[tuple[float, int, str, HoldStation]] = []
        seq = itertools.count()
        now0 = now
        for st in self.stations:
            heap.append((now + random.random() * meter_s, next(seq), "meter", st))
            heap.append((now + random.random() * heartbeat_s, next(seq), "heartbeat", st))
        heapq.heapify(heap)
        lags: list[float] = []
        skipped = 0
        cpu0 = time.process_time()
        while heap and heap[0][0] < end:
            due, _, kind, st = heap[0]
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(min(due, end) - now)
                continue
            heapq.heappop(heap)
            lags.append(now - due)
            if await st.fire(kind):
                every = meter_s if kind == "meter" else heartbeat_s
                heapq.heappush(heap, (due + every, next(seq), kind, st))
            elif st.ws is not None:  # busy with another call: retry shortly
                heapq.heappush(heap, (now + 0.05, next(seq), kind, st))
            else:
                skipped += 1
        await asyncio.sleep(min(2.0, max(0.2, seconds / 10)))  # let the last answers arrive
        unanswered = sum(1 for st in self.stations if st.uid is not None)
        cpu = time.process_time() - cpu0
        lags.sort()
        return {
            "event": "traffic", "seconds": seconds, "connected": self.connected,
            "sent": self.sent - sent0, "calls": len(self.latencies),
            "calls_per_s": round(len(self.latencies) / seconds, 1), "errors": self.errors,
            "unanswered": unanswered, "disconnects": self.disconnects - disc0, "skipped": skipped,
            **latency_summary(self.latencies),
            "lag_p99_ms": round(percentile(lags, 0.99) * 1000, 2),
            "stalls": _stalls(self.slow, now0),
            "loadgen_cpu_util": round(cpu / seconds, 2),
        }

    async def wait_back(self, since: float, timeout_s: float) -> dict[str, Any]:
        """Wait until every station has reconnected (and been answered) after ``since``."""
        n = len(self.stations)
        while time.monotonic() - since < timeout_s:
            if sum(1 for s in self.stations if s.back_at > since) >= n:
                break
            await asyncio.sleep(0.05)
        back = sorted(s.back_at - since for s in self.stations if s.back_at > since)
        noticed = sorted(s.down_at - since for s in self.stations if s.down_at > since)
        return {
            "event": "back", "stations": n, "back": len(back),
            "all_back_s": round(back[-1], 2) if len(back) == n and back else None,
            "p50_s": round(percentile(back, 0.5), 2), "p90_s": round(percentile(back, 0.9), 2),
            "p99_s": round(percentile(back, 0.99), 2),
            "noticed_max_s": round(noticed[-1], 2) if noticed else None,
            "attempts": sum(s.attempts for s in self.stations), "refused": dict(self.refused),
        }

    async def command(self, cmd: dict[str, Any]) -> dict[str, Any]:
        name = cmd.get("cmd")
        if name == "connect":
            return await self.connect(int(cmd["total"]), float(cmd.get("rate", 0)),
                                      bool(cmd.get("tx", False)), float(cmd.get("timeout_s", 600)))
        if name == "traffic":
            return await self.traffic(float(cmd["seconds"]), float(cmd.get("meter_s", 60)),
                                      float(cmd.get("heartbeat_s", 300)))
        if name == "start_tx":
            return await self.start_transactions(float(cmd.get("share", 1.0)), float(cmd.get("rate", 0)),
                                                 float(cmd.get("timeout_s", 300)))
        if name == "wait_back":
            return await self.wait_back(float(cmd["since"]), float(cmd.get("timeout_s", 120)))
        if name == "transactions":
            return {"event": "transactions", "acked": self.acked}
        if name == "status":
            return {"event": "status", "stations": len(self.stations), "connected": self.connected,
                    "refused": dict(self.refused)}
        return {"event": "error", "error": f"unknown command {name!r}"}

    def close(self) -> None:
        self.closing = True
        for st in self.stations:
            if st.ws is not None:
                with contextlib.suppress(Exception):
                    st.ws.transport.abort()
            if st.task is not None:
                st.task.cancel()
        self.endpoints.close()


async def run_hold(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    fleet = Fleet(args.url, args.protocol, args.prefix, args.source_ips,
                  Backoff(args.wait_min, args.random_range, args.repeat_times), args.open_timeout,
                  args.password, SecurityOptions(ca_file=args.ca_file, client_ca_cert=args.client_ca_cert,
                                                 client_ca_key=args.client_ca_key))
    _emit({"event": "ready", "nofile": raise_nofile()})
    try:
        while line := await reader.readline():
            cmd = orjson.loads(line)
            if cmd.get("cmd") == "quit":
                break
            try:
                _emit(await fleet.command(cmd))
            except Exception as exc:  # report, keep the stations
                _emit({"event": "error", "error": f"{type(exc).__name__}: {exc}"})
    finally:
        fleet.close()
    _emit({"event": "bye"})


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    sys.stdout.flush()


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["throughput", "hold"], default="throughput")
    p.add_argument("--url", required=True, help="OCPP base URL, e.g. ws://127.0.0.1:9000/ocpp")
    p.add_argument("--protocol", choices=["1.6", "2.0.1", "mixed"], default="1.6")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds (after warm-up)")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--rate", type=float, default=0.0, help="total calls/s; 0 = saturate")
    p.add_argument("--prefix", default="LG")
    p.add_argument("--source-ips", type=int, default=8,
                   help="spread connections over 127.0.0.2.. (0: the kernel's choice)")
    p.add_argument("--open-timeout", type=float, default=30.0)
    p.add_argument("--wait-min", type=float, default=1.0, help="hold: RetryBackOffWaitMinimum (s)")
    p.add_argument("--random-range", type=float, default=5.0, help="hold: RetryBackOffRandomRange (s)")
    p.add_argument("--repeat-times", type=int, default=5, help="hold: RetryBackOffRepeatTimes")
    p.add_argument("--password", default=None, help="hold: every station logs in with this password")
    p.add_argument("--ca-file", default=None, help="hold, wss://: the CA the CSMS's certificate chains to")
    p.add_argument("--client-ca-cert", default=None,
                   help="hold, wss://: issue each station a client certificate (CN = id) with this CA")
    p.add_argument("--client-ca-key", default=None, help="the key of --client-ca-cert")
    args = p.parse_args(argv)
    raise_nofile()
    gc.set_threshold(50_000, 20, 100)
    if args.mode == "hold":
        _run(run_hold(args))
        return
    if args.protocol == "mixed":
        p.error("--protocol mixed is for --mode hold")
    result = _run(run_throughput(args.url, args.protocol, args.connections, args.duration, args.rate,
                                 args.warmup, args.prefix, args.source_ips))
    _emit(result)


if __name__ == "__main__":
    main()
