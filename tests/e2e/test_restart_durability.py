"""Nothing acknowledged is lost when the CSMS process is killed with SIGKILL and restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import websockets


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def csms_process(db: Path, ocpp_port: int, api_port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "csms", "serve", "--db", str(db), "--ocpp-port", str(ocpp_port),
         "--api-port", str(api_port), "--auto-register", "--log-format", "json", "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


async def wait_healthy(api_port: int) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(f"http://127.0.0.1:{api_port}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("CSMS did not become healthy")


async def run_station(url: str, n: int, acked: list[tuple[str, int, int]]) -> None:
    """Start and stop sessions as fast as the CSMS answers; record every acknowledged stop."""
    async with websockets.connect(url, subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        station = url.rsplit("/", 1)[1]
        for i in range(n):
            stamp = f"2026-11-29T08:{i // 60:02d}:{i % 60:02d}Z"
            await ws.send(orjson.dumps([2, f"s{i}", "StartTransaction", {
                "connectorId": 1, "idTag": "T", "meterStart": i * 1000, "timestamp": stamp}]).decode())
            reply = orjson.loads(await ws.recv())
            tx_id = reply[2]["transactionId"]
            await ws.send(orjson.dumps([2, f"e{i}", "StopTransaction", {
                "transactionId": tx_id, "meterStop": i * 1000 + 500, "timestamp": stamp}]).decode())
            orjson.loads(await ws.recv())
            acked.append((station, tx_id, i * 1000 + 500))


async def test_acknowledged_transactions_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "csms.sqlite3"
    ocpp_port, api_port = free_port(), free_port()
    acked: list[tuple[str, int, int]] = []
    with csms_process(db, ocpp_port, api_port) as proc:
        await wait_healthy(api_port)
        url = f"ws://127.0.0.1:{ocpp_port}/ocpp"
        tasks = [asyncio.create_task(run_station(f"{url}/KILL{k}", 10_000, acked)) for k in range(4)]
        for _ in range(3000):  # bounded: at most ~30 s
            if len(acked) >= 60:
                break
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # mid-stream, while calls are in flight
        await asyncio.gather(*tasks, return_exceptions=True)
    assert len(acked) >= 60
    with csms_process(db, ocpp_port, api_port):
        await wait_healthy(api_port)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as api:
            stored = (await api.get("/api/transactions", params={"limit": 10_000})).json()
    by_key = {(t["charger_id"], t["id"]): t for t in stored}
    for station, tx_id, meter_stop in acked:
        tx = by_key[(station, tx_id)]
        assert tx["meter_stop_wh"] == meter_stop and tx["stopped_at"] is not None
    assert len({(s, t) for s, t, _ in acked}) == len(acked)  # one record per acknowledged session


async def test_sigterm_shuts_down_gracefully_closing_stations_with_1001(tmp_path: Path) -> None:
    ocpp_port, api_port = free_port(), free_port()
    with csms_process(tmp_path / "db.sqlite3", ocpp_port, api_port) as proc:
        await wait_healthy(api_port)
        async with websockets.connect(f"ws://127.0.0.1:{ocpp_port}/ocpp/TERM1",
                                      subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed as exc:
                assert exc.rcvd is not None and exc.rcvd.code == 1001
        assert proc.wait(15) == 0
