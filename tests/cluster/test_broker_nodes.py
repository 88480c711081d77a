"""Core and gateway nodes linked by a real Mosquitto broker, sharing a real PostgreSQL: stations
spread over the cores, every core's API commands every station, and a core killed with
``kill -9`` hands its stations to the other one (they reconnect through the same gateway)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.typing import Subprotocol

from tests.services import free_port, wait_port
from tests.telemetry.servers import MosquittoServer

pytestmark = pytest.mark.timeout(120)


class Node:
    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-m", "csms", *argv], env=env, stdout=log.open("wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def kill9(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str) -> Iterator[dict[str, Any]]:
    (tmp_path / "mqtt").mkdir()
    broker = MosquittoServer(tmp_path / "mqtt")
    broker.start()
    nodes: list[Node] = []
    env = {**os.environ, "CSMS_CLUSTER_LEASE_TTL_S": "2", "CSMS_CLUSTER_RENEW_S": "0.5",
           "CSMS_LOG_FORMAT": "json"}
    try:
        db = pg_url.rsplit("/", 1)[0] + "/postgres"
        apis = {}
        for name in ("core-1", "core-2"):
            port = free_port()
            nodes.append(Node(name, ["serve", "--db", db, "--bus", broker.url, "--node-id", name,
                                     "--api-port", str(port), "--no-ocpp", "--auto-register"],
                              tmp_path / f"{name}.log", env))
            apis[name] = f"http://127.0.0.1:{port}"
            wait_port(port, 60)
        ocpp_port = free_port()
        nodes.append(Node("gw-1", ["gateway", "--bus", broker.url, "--node-id", "gw-1",
                                   "--ocpp-port", str(ocpp_port)], tmp_path / "gw-1.log", env))
        wait_port(ocpp_port, 30)
        yield {"api": apis, "ocpp": f"ws://127.0.0.1:{ocpp_port}/ocpp", "nodes": {n.name: n for n in nodes},
               "broker": ("127.0.0.1", broker.port)}
    finally:
        for node in nodes:
            node.kill9()
        broker.stop()


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class Station:
    """A bare OCPP 1.6 station: boots, then answers every call Accepted."""

    def __init__(self, url: str, station_id: str) -> None:
        self.url, self.station_id = url, station_id
        self.calls: list[str] = []
        self.closed: int | None = None
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        url = f"{self.url}/{self.station_id}"
        async with websockets.connect(url, subprotocols=[Subprotocol("ocpp1.6")]) as ws:
            await ws.send(json.dumps([2, "boot", "BootNotification",
                                      {"chargePointVendor": "ACME", "chargePointModel": "X"}]))
            try:
                async for raw in ws:
                    msg = json.loads(raw)
                    if msg[0] == 2:
                        self.calls.append(msg[2])
                        await ws.send(json.dumps([3, msg[1], {"status": "Accepted"}]))
            except websockets.ConnectionClosed:
                pass
            finally:
                self.closed = ws.close_code

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())


def located(api: str, station_ids: list[str]) -> dict[str, str] | None:
    """Station id -> the core serving it, read from one core's API; None until all are connected."""
    where = {}
    for station_id in station_ids:
        status, view = http("GET", f"{api}/api/chargers/{station_id}")
        if status != 200 or not view["connected"]:
            return None
        where[station_id] = view["core"]
    return where


async def until(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.2)


async def test_cores_share_stations_and_any_core_commands_any_station(cluster: dict[str, Any]) -> None:
    api = cluster["api"]
    stations = [Station(cluster["ocpp"], f"CL-{i}") for i in range(6)]
    for st in stations:
        st.start()
        await asyncio.sleep(0.05)

    ids = [st.station_id for st in stations]
    where = await until(lambda: located(api["core-1"], ids), 30, "every station connected and located")
    for station_id in ids:
        _, view = await asyncio.to_thread(http, "GET", f"{api['core-2']}/api/chargers/{station_id}")
        assert (view["connected"], view["core"], view["gateway"]) == (True, where[station_id], "gw-1")

    # malformed messages on the cluster's topics cost those messages, never a node's connection
    import paho.mqtt.publish as mqtt_publish
    from paho.mqtt.client import MQTTv5

    host, port = cluster["broker"]
    bad = {"csms/where/core-x.000000": b"[[1]]",
           "csms/open/gw-x.000000": b"\x00\x00\x00\x09\x01\x00\x00\x00\x01{{{{",  # an OPEN, not JSON
           "csms/events/core-x.000000": b"not json", "csms/node/core-x.000000": b"{"}
    for topic, payload in bad.items():
        await asyncio.to_thread(mqtt_publish.single, topic, payload, hostname=host, port=port,
                                protocol=MQTTv5)
    assert set(where.values()) == {"core-1", "core-2"}, where  # the broker spread them

    for st in stations:
        for core in ("core-1", "core-2"):
            status, answer = await asyncio.to_thread(
                http, "POST", f"{api[core]}/api/chargers/{st.station_id}/actions/TriggerMessage",
                {"requestedMessage": "Heartbeat"})
            assert (status, answer) == (200, {"status": "Accepted"}), (core, st.station_id)
        assert st.calls.count("TriggerMessage") == 2

    status, body = await asyncio.to_thread(http, "GET", f"{api['core-2']}/api/cluster")
    assert status == 200
    alive = {(n["node_id"], n["role"]): n["stations"] for n in body["nodes"] if n["alive"]}
    assert alive[("gw-1", "gateway")] == 6
    assert alive[("core-1", "core")] + alive[("core-2", "core")] == 6

    # kill -9 the core serving the first station: the gateway closes its stations, they reconnect
    victim = where[stations[0].station_id]
    survivor = "core-2" if victim == "core-1" else "core-1"
    cluster["nodes"][victim].kill9()
    moved = [st for st in stations if where[st.station_id] == victim]
    for st in moved:
        assert st.task is not None
        await asyncio.wait_for(st.task, 15)
        assert st.closed == 1011
    for st in moved:
        st.start()

    def moved_over() -> bool:
        for st in moved:
            status, view = http("GET", f"{api[survivor]}/api/chargers/{st.station_id}")
            if not (status == 200 and view["connected"] and view["core"] == survivor):
                return False
        return True

    await until(moved_over, 15, "the killed core's stations served by the other core")
    for st in stations:
        status, answer = await asyncio.to_thread(
            http, "POST", f"{api[survivor]}/api/chargers/{st.station_id}/actions/TriggerMessage",
            {"requestedMessage": "Heartbeat"})
        assert (status, answer) == (200, {"status": "Accepted"}), st.station_id

    def gone_listed() -> bool:
        _, body = http("GET", f"{api[survivor]}/api/cluster")
        return any(n["node_id"] == victim and not n["alive"] for n in body["nodes"])

    await until(gone_listed, 10, "the killed core listed as not alive")
    for st in stations:
        if st.task is not None:
            st.task.cancel()
