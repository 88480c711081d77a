"""One CSMS core and the simulator fleet on two hosts (network namespaces), PostgreSQL on a third:
stations connect over the bridge, transactions land in PostgreSQL, and after ``kill -9`` and a
restart of the core the stations are back and nothing the fleet saw acknowledged is missing."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.cluster import nodes
from tests.cluster.netns import Cluster
from tests.cluster.nodes import API_PORT, OCPP_PORT, connected, stored, until

pytestmark = pytest.mark.e2e

STATIONS = 20
PREFIX = "SMK"


@pytest.mark.timeout(180)
async def test_fleet_on_its_own_host_survives_kill_9_of_the_core(cluster: Cluster, tmp_path: Path) -> None:
    cluster.wait_pg_ready()
    core, fleet_host = cluster.node("core1"), cluster.node("fleet")
    serve = ("serve", "--db", cluster.pg_url, "--host", core.addr, "--ocpp-port", str(OCPP_PORT),
             "--api-port", str(API_PORT), "--auto-register", "--accept-unknown-tags")
    first = nodes.csms(core, *serve, name="core")
    first.wait_http(f"http://{core.addr}:{API_PORT}/healthz", timeout_s=60)
    out = tmp_path / "fleet"
    sim = nodes.fleet(fleet_host, [f"ws://{core.addr}:{OCPP_PORT}/ocpp"], out, chargers=STATIONS,
                      prefix=PREFIX, duration_s=300)

    async with nodes.api(core) as client:
        async def all_connected() -> bool:
            return await connected(client, PREFIX) == STATIONS

        async def started(at_least: int) -> bool:
            return len((await stored(cluster.pg_url, PREFIX)).started) >= at_least

        await until(f"{STATIONS} stations connected", all_connected, 30, [first, sim])
        await until("10 transactions in PostgreSQL", lambda: started(10), 30, [first, sim])
        before = len((await stored(cluster.pg_url, PREFIX)).started)

        first.kill9()
        with pytest.raises(httpx.TransportError):
            await client.get("/healthz")
        second = nodes.csms(core, *serve, name="core")
        second.wait_http(f"http://{core.addr}:{API_PORT}/healthz", timeout_s=60)
        back_s = await until(f"{STATIONS} stations back", all_connected, 30, [second, sim])
        await until("new transactions after the restart", lambda: started(before + 5), 30, [second, sim])

    sim.popen.send_signal(signal.SIGTERM)  # the fleet ends its sessions and sends their stops
    sim.wait(40)
    report = nodes.report(out)
    acked = nodes.acknowledged(Path(f"{out}.jsonl"))
    db = await stored(cluster.pg_url, PREFIX)
    assert {x["action"] for x in acked} >= {"StartTransaction", "StopTransaction", "TransactionEvent"}
    assert sum(x["event"] == "Ended" for x in acked) >= 10
    assert nodes.lost(acked, db) == [], f"acknowledged, not stored (stations back after {back_s:.1f} s)"
    assert report["connections"]["reconnects"] >= STATIONS
    assert report["errors"]["protocol"] == 0, report["errors"]
