"""Console test kit: a tiny OCPP station over a real WebSocket, Chromium settings, screenshots,
and a store filled in bulk (stations and sessions) for the paging tests and the console bench."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
import uvicorn
import websockets
from fastapi import FastAPI
from playwright.async_api import Page

from csms.store import schema
from csms.store.sql import SqlStore

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
Answer = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] | tuple[str, str] | None


def iso(ts: datetime | None = None) -> str:
    return (ts or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TinyStation:
    """A minimal charger speaking OCPP-J JSON frames; answers the CSMS's CALLs from ``answers``.

    An answer is a payload, a function of the request payload, ``(code, description)``
    for a CALLERROR, or None for no answer at all. Every CALL received is kept in
    ``received`` as ``(action, payload)``.
    """

    def __init__(self, ws: websockets.ClientConnection, station_id: str, protocol: str) -> None:
        self.ws = ws
        self.station_id = station_id
        self.protocol = protocol
        self.answers: dict[str, Answer] = {}
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._got_call = asyncio.Condition()
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, ocpp_url: str, station_id: str, protocol: str = "ocpp1.6") -> TinyStation:
        ws = await websockets.connect(f"{ocpp_url}/{station_id}", subprotocols=[protocol])  # type: ignore[list-item]
        return cls(ws, station_id, protocol)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self) -> None:
        async for raw in self.ws:
            frame = orjson.loads(raw)
            if frame[0] == 2:
                await self._answer(frame[1], frame[2], frame[3])
            elif frame[1] in self._pending:
                fut = self._pending.pop(frame[1])
                if frame[0] == 3:
                    fut.set_result(frame[2])
                else:
                    fut.set_exception(AssertionError(f"CSMS answered with CALLERROR {frame[2:]}"))

    async def _answer(self, uid: str, action: str, payload: dict[str, Any]) -> None:
        async with self._got_call:
            self.received.append((action, payload))
            self._got_call.notify_all()
        answer = self.answers.get(action, {"status": "Accepted"})
        if answer is None:
            return
        if isinstance(answer, tuple):
            await self.ws.send(orjson.dumps([4, uid, answer[0], answer[1], {}]).decode())
            return
        body = answer(payload) if callable(answer) else answer
        await self.ws.send(orjson.dumps([3, uid, body]).decode())

    async def wait_call(self, action: str, timeout: float = 10) -> dict[str, Any]:
        """The payload of the first CALL ``action`` received (waiting for it when needed)."""
        async with asyncio.timeout(timeout), self._got_call:
            while True:
                for name, payload in self.received:
                    if name == action:
                        return payload
                await self._got_call.wait()

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        uid = f"t{next(self._ids)}"
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[uid] = fut
        await self.ws.send(orjson.dumps([2, uid, action, payload]).decode())
        async with asyncio.timeout(10):
            result: dict[str, Any] = await fut
            return result

    # --- the messages a console test needs, in the station's version ---------------------
    async def boot(self, vendor: str = "Acme", model: str = "AC22") -> None:
        if self.protocol == "ocpp1.6":
            await self.call("BootNotification", {"chargePointVendor": vendor, "chargePointModel": model,
                                                 "firmwareVersion": "1.4.2"})
        else:
            await self.call("BootNotification", {"reason": "PowerUp", "chargingStation": {
                "vendorName": vendor, "model": model, "firmwareVersion": "2.0.7"}})

    async def status(self, connector: int, status: str, error: str = "NoError") -> None:
        if self.protocol == "ocpp1.6":
            await self.call("StatusNotification", {"connectorId": connector, "status": status,
                                                   "errorCode": error, "timestamp": iso()})
        else:
            await self.call("StatusNotification", {"timestamp": iso(), "connectorStatus": status,
                                                   "evseId": connector, "connectorId": 1})

    async def meter(
        self, connector: int, *, power_w: float, current_a: float, energy_wh: float, soc: float | None = None,
        tx_id: int | None = None,
    ) -> None:
        values: list[dict[str, Any]] = [
            {"measurand": "Energy.Active.Import.Register", "unit": "Wh", "value": f"{energy_wh:.0f}"},
            {"measurand": "Power.Active.Import", "unit": "W", "value": f"{power_w:.0f}"},
        ]
        values += [{"measurand": "Current.Import", "unit": "A", "phase": p, "value": f"{current_a:.1f}"}
                   for p in ("L1", "L2", "L3")]
        if soc is not None:
            values.append({"measurand": "SoC", "unit": "Percent", "value": f"{soc:.0f}"})
        if self.protocol == "ocpp1.6":
            payload: dict[str, Any] = {"connectorId": connector,
                                       "meterValue": [{"timestamp": iso(), "sampledValue": values}]}
            if tx_id is not None:
                payload["transactionId"] = tx_id
            await self.call("MeterValues", payload)
        else:
            for v in values:
                v["unitOfMeasure"] = {"unit": v.pop("unit")}
                v["value"] = float(v["value"])
            await self.call("MeterValues", {"evseId": connector,
                                            "meterValue": [{"timestamp": iso(), "sampledValue": values}]})

    async def start_transaction(self, connector: int, id_tag: str, meter_start_wh: int) -> int:
        """1.6 StartTransaction; returns the transaction id the CSMS assigned."""
        answer = await self.call("StartTransaction", {"connectorId": connector, "idTag": id_tag,
                                                      "meterStart": meter_start_wh, "timestamp": iso()})
        return int(answer["transactionId"])


async def screenshot(page: Page, name: str) -> Path:
    """Save ``artifacts/screenshots/<name>.png`` (the full page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off", ws="websockets-sansio",
                                           timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve([sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()  # it failed to start: raise why
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


SEED_START = datetime(2026, 11, 1, tzinfo=UTC)
VENDORS = (("Acme", "AC22"), ("Volta", "DC150"), ("Wallbox", "Pulsar"))


def station_id_of(i: int) -> str:
    return f"CP{i:05d}"


async def fill_store(db: Path, *, stations: int, sessions: int, active_every: int = 50) -> None:
    """A migrated SQLite store with ``stations`` registered stations (vendor and protocol by ``i % 3``)
    and ``sessions`` 1.6 sessions, one every 5 minutes from ``SEED_START`` round-robin over the
    stations, each an hour long; every ``active_every``-th is still open. Bulk inserts, one transaction."""
    store = await SqlStore.open(str(db), synchronous="OFF")  # creates the schema
    await store.close()
    station_rows = [
        {"station_id": station_id_of(i), "protocol": "ocpp1.6" if i % 3 else "ocpp2.0.1",
         "vendor": VENDORS[i % 3][0], "model": VENDORS[i % 3][1], "serial_number": f"SN{i:07d}",
         "firmware_version": "1.0", "security_profile": 0, "registered_at": SEED_START,
         "last_boot_at": SEED_START, "last_seen_at": SEED_START + timedelta(minutes=i)}
        for i in range(stations)
    ]
    tx_rows = []
    for j in range(sessions):
        started = SEED_START + timedelta(minutes=5 * j)
        active = j % active_every == active_every - 1
        tx_rows.append({
            "station_id": station_id_of(j % stations), "tx_id": str(j + 1), "protocol": "ocpp1.6",
            "evse_id": 1, "connector_id": 1, "id_tag": f"TAG{j % 997:04d}", "started_at": started,
            "stopped_at": None if active else started + timedelta(hours=1), "meter_start_wh": 0.0,
            "meter_stop_wh": None if active else 11_000.0, "meter_last_wh": None,
            "stop_reason": None if active else "EVDisconnected", "last_seq_no": None, "flags": "",
            "start_key": None, "received_at": started,
        })
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            if station_rows:
                conn.execute(schema.stations.insert(), station_rows)
            if tx_rows:
                conn.execute(schema.transactions.insert(), tx_rows)
    finally:
        engine.dispose()
