"""Closed loop: balancer -> OCPP charging profiles -> simulated EVs -> meter values -> balancer.

120 simulated chargers (1.6 and 2.0.1 mixed) under three feeders whose demand is far above
capacity. After the allocation settles, every feeder's measured load stays at or below its
limit, allocations use at least 95 % of it and are fair; a limit cut through the API is
respected within a few seconds.
"""

from __future__ import annotations

import asyncio
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx

from csms.app import default_plugins, running
from csms.balancer.checks import jain_index
from simulators.fleet import FleetConfig, run_fleet
from simulators.scenario import balancer_topology, parse_scenario
from tests.conftest import make_settings

SCENARIO = """
name = "closed-loop"
seed = 11
duration_s = 0

[fleet]
chargers = 120
protocol = "mixed"
v201_share = 0.5
id_prefix = "CL"
ramp_up_per_s = 400

[charger]
meter_interval_s = 1
heartbeat_interval_s = 60

[[models]]
name = "ac22"
model = "AC22"
evses = 1
max_current_a = 32

[id_tags]
prefix = "CLTAG"
count = 200

[arrivals]
first_within_s = 2
first_share = 1.0
sessions_per_day = 0
dwell_mean_s = 90000
dwell_min_s = 86000
dwell_max_s = 95000

[grid]
[[grid.nodes]]
id = "site"
limit_a = 2000

[[grid.nodes]]
id = "feeder-a"
parent = "site"
limit_a = 300
chargers = 1

[[grid.nodes]]
id = "feeder-b"
parent = "site"
limit_a = 250
chargers = 1

[[grid.nodes]]
id = "feeder-c"
parent = "site"
limit_a = 400
chargers = 1
"""

FEEDERS = ("feeder-a", "feeder-b", "feeder-c")
TOLERANCE_A = 0.5  # meter rounding of the simulated chargers


async def feeders(api: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in (await api.get("/api/feeders")).json()}


async def wait_until(predicate: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.5)
    raise AssertionError("condition not reached in time")


async def test_feeders_stay_within_limits_fully_used_and_fair(tmp_path: Path) -> None:
    scenario = parse_scenario(tomllib.loads(SCENARIO), "closed-loop")
    topo = balancer_topology(scenario)
    settings = make_settings(
        tmp_path,
        accept_unknown_tags=True,
        balancer={
            "enabled": True,
            "tick_s": 1.0,
            "min_interval_per_station_s": 1.0,
            "nodes": topo["nodes"],
            "evses": topo["evses"],
        },
    )
    async with (
        running(settings, plugins=default_plugins(settings)) as app,
        httpx.AsyncClient(base_url=app.api_url, timeout=10) as api,
    ):
        stop = asyncio.Event()
        fleet = asyncio.create_task(
            run_fleet(
                FleetConfig(csms_url=app.ocpp_url, scenario=scenario, duration_s=0, progress_interval_s=60),
                stop=stop,
            )
        )
        try:

            async def all_charging() -> bool:
                nodes = await feeders(api)
                return all(sum(c["charging"] for c in nodes[f]["chargers"]) == 40 for f in FEEDERS)

            await wait_until(all_charging, 30)
            await asyncio.sleep(6)  # allocation settles, EVs follow, meters report
            for _ in range(6):  # sampled over a few seconds, not once
                nodes = await feeders(api)
                for f in FEEDERS:
                    node = nodes[f]
                    assert node["measured_a"] <= node["limit_a"] + TOLERANCE_A, node
                    assert node["allocated_a"] <= node["limit_a"] + 1e-6
                    assert node["allocated_a"] >= 0.95 * node["limit_a"], (f, node["allocated_a"])
                    shares = [c["allocated_a"] for c in node["chargers"] if c["charging"]]
                    assert jain_index(shares) >= 0.95, (f, shares)
                await asyncio.sleep(0.5)

            cut = await api.put("/api/feeders/feeder-c/limit", json={"limit_a": 260})
            assert cut.status_code == 200 and cut.json()["allocated_a"] <= 260 + 1e-6

            async def cut_respected() -> bool:
                node = (await feeders(api))["feeder-c"]
                return bool(node["measured_a"] <= 260 + TOLERANCE_A)

            started = time.monotonic()
            await wait_until(cut_respected, 8)
            assert time.monotonic() - started < 8
        finally:
            stop.set()
            report = await fleet
        assert report.protocol_errors == 0
