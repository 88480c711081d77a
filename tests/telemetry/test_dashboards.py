"""Every panel query of every dashboard returns data from InfluxDB 1.x after a real CSMS run.

The CSMS runs with the InfluxDB and MQTT plugins; stations of both protocols drive full
sessions over real websockets; feeder loads are published on the bus as the balancer
does, external feeder readings and limits arrive over MQTT. Grafana's macros and
template variables are expanded the way Grafana does for InfluxQL.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from ocpp_driver import drive_v16, drive_v201, iso, open_station, wait_until
from servers import InfluxServer, MosquittoServer, free_port

from csms.app import CsmsApp, running
from csms.core.events import FeederLoadChanged
from csms.telemetry.plugin import influx_plugin, mqtt_plugin
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "csms" / "telemetry" / "dashboards").glob("*.json"))


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("dashboards_generate", ROOT / "dashboards" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_committed_json_is_what_the_generator_writes() -> None:
    rendered = _generator().rendered()
    assert sorted(rendered) == [p.name for p in DASHBOARDS]
    for path in DASHBOARDS:
        assert path.read_text(encoding="utf-8") == rendered[path.name], "run python dashboards/generate.py"


def test_dashboards_cover_the_issue_panels() -> None:
    titles = {p.stem: {panel["title"] for panel in json.loads(p.read_text())["panels"]} for p in DASHBOARDS}
    assert {"Stations online by protocol", "Total power now", "Energy today", "Active sessions",
            "OCPP messages and errors per second"} <= titles["network-overview"]
    assert {"Load, allocation and limit", "Headroom", "Allocations per EVSE"} <= titles["feeders"]
    assert {"Power", "Current per phase", "Voltage per phase", "State of charge", "Status timeline",
            "Sessions"} <= titles["station-detail"]
    assert {"Handler latency p95 by action", "Errors by action and result", "Telemetry buffer depth",
            "MQTT outbox"} <= titles["csms-health"]


def expand(query: str, variables: dict[str, list[str]]) -> str:
    """Grafana's InfluxQL interpolation for its default range, the last hour."""
    return _expand(query, variables)


def _expand(query: str, variables: dict[str, list[str]]) -> str:
    """Grafana's InfluxQL interpolation: time filter, interval, and regex-escaped multi-values."""
    out = query.replace("$timeFilter", "time > now() - 1h").replace("$__interval", "1s")
    for name, values in variables.items():
        escaped = [re.sub(r"([\\^$.|?*+()\[\]{}/])", r"\\\1", v) for v in values]
        out = out.replace(f"${name}", escaped[0] if len(escaped) == 1 else f"({'|'.join(escaped)})")
    return out


def resolve_variables(influxdb: InfluxServer, dashboard: dict[str, Any]) -> dict[str, list[str]]:
    """Run each query variable's query; single-valued variables take the first value, like Grafana."""
    resolved: dict[str, list[str]] = {}
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        rows = influxdb.rows(expand(var["query"], resolved))
        values = sorted({str(r["value"]) for r in rows})
        assert values, f"variable {var['name']} has no values"
        resolved[var["name"]] = values if var["multi"] else values[:1]
    return resolved


def has_data(series: list[dict[str, Any]]) -> bool:
    return any(v is not None for s in series for row in s["values"] for v in row[1:])


async def _feeder_traffic(app: CsmsApp, broker_port: int) -> None:
    """Three balancer ticks on the bus, and external feeder readings and limits over MQTT."""
    for tick in range(3):
        app.bus.publish(FeederLoadChanged(node_id="SITE", parent_id=None, limit_a=400.0,
                                          measured_a=120.0 + tick, allocated_a=48.0, headroom_a=280.0))
        app.bus.publish(FeederLoadChanged(
            node_id="F1", parent_id="SITE", limit_a=200.0, measured_a=60.0 + tick, allocated_a=48.0,
            headroom_a=152.0 - tick, evses=(("CP16", 1, 16.0), ("CP201", 1, 32.0))))
        await asyncio.sleep(0.3)
    async with aiomqtt.Client("127.0.0.1", broker_port) as client:
        await client.publish("csms/feeders/F1/meter", orjson.dumps({"current_a": [80, 85.5, 70]}), qos=1)
        await client.publish("csms/feeders/F1/limit", orjson.dumps({"limit_a": 180}), qos=1)


async def _errors_and_security(app: CsmsApp) -> None:
    st = await open_station(app.ocpp_url, "CPERR", "ocpp1.6")
    try:
        await st.call("BootNotification", {"chargePointVendor": "Bad", "chargePointModel": "X"})
        await st.call("SecurityEventNotification", {"type": "InvalidCentralSystemCertificate",
                                                    "timestamp": iso(), "techInfo": "test"})
        await st.ws.send(orjson.dumps([2, "bad1", "MeterValues", {"meterValue": []}]).decode())
        answer = orjson.loads(await st.ws.recv())
        assert answer[0] == 4  # CALLERROR: connectorId missing
    finally:
        await st.ws.close()


@pytest.fixture
async def loaded_influxdb(influxdb: InfluxServer, mosquitto: MosquittoServer, tmp_path: Path) -> InfluxServer:
    settings = make_settings(
        tmp_path,
        influx={"url": influxdb.url, "api": "v1", "flush_interval_s": 0.05, "health_interval_s": 0.2},
        mqtt={"url": mosquitto.url, "topic_prefix": "csms"},
    )
    async with running(settings, plugins=[influx_plugin, mqtt_plugin]) as app:
        await wait_until(lambda: app.parts.mqtt.stats.connected)
        await asyncio.gather(drive_v16(app.ocpp_url, "CP16", samples=6), drive_v201(app.ocpp_url, "CP201"),
                             _errors_and_security(app))
        await _feeder_traffic(app, mosquitto.port)
        writer = app.parts.influx
        await wait_until(lambda: influxdb.rows('SELECT count("limit_a") FROM "feeder_limit"'))
        await asyncio.sleep(1.5)  # a few more health samples after the traffic
        await wait_until(lambda: writer.stats.written >= writer.stats.offered)
        assert writer.stats.rejected == 0  # no field-type conflicts anywhere in the schema
    return influxdb


async def test_every_panel_query_returns_data(loaded_influxdb: InfluxServer) -> None:
    empty = []
    checked = 0
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        variables = resolve_variables(loaded_influxdb, dashboard)
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                query = expand(target["query"], variables)
                assert not re.search(r"\$\{?[A-Za-z_]", query), f"unexpanded variable in {query}"
                checked += 1
                if not has_data(loaded_influxdb.query(query)):
                    empty.append(f"{path.stem} / {panel['title']} / {target['refId']}: {query}")
    assert not empty, "panels without data:\n" + "\n".join(empty)
    assert checked >= 40


DEMO_FAST = {  # the demo scenario, faster: sessions start and end within a 20 s run
    "time_acceleration = 30": "time_acceleration = 600",
    "meter_interval_s = 5": "meter_interval_s = 1",
    "dwell_mean_s = 3600": "dwell_mean_s = 1800",
    "dwell_min_s = 900": "dwell_min_s = 600",
    "dwell_max_s = 14400": "dwell_max_s = 3600",
}
NOT_IN_FLEET_DATA = {'mean("voltage_l2_v")', 'mean("voltage_l3_v")'}  # the fleet reports one voltage (L1-N)


def _run_demo(influxdb: InfluxServer, tmp_path: Path, seconds: float) -> subprocess.CompletedProcess[str]:
    """``csms demo`` in its own process, its telemetry going to ``influxdb``."""
    text = (ROOT / "simulators" / "scenarios" / "demo.toml").read_text(encoding="utf-8")
    for old, new in DEMO_FAST.items():
        assert old in text, old
        text = text.replace(old, new)
    scenario = tmp_path / "demo-fast.toml"
    scenario.write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    env.update(PYTHONPATH=str(ROOT), CSMS_INFLUX_URL=influxdb.url, CSMS_INFLUX_API="v1",
               CSMS_INFLUX_FLUSH_INTERVAL_S="0.2", CSMS_INFLUX_HEALTH_INTERVAL_S="1",
               CSMS_INFLUX_BUFFER_DIR=str(tmp_path / "buffer"))
    command = [sys.executable, "-m", "csms", "demo", "--duration", str(seconds), "--chargers", "8",
               "--scenario", str(scenario), "--ocpp-port", str(free_port()), "--api-port", str(free_port())]
    return subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=seconds + 90)  # killed on timeout


def _three_phase_station_with_ended_sessions(influxdb: InfluxServer) -> str:
    """What an operator would pick to look at: a station whose sessions ended (one-phase
    stations have no L2/L3 readings to show)."""
    rows = influxdb.rows('SELECT "tx_id" FROM "session" WHERE "event" = \'ended\' AND time > now() - 1h '
                         'GROUP BY "station"')
    ended = {str(r["station"]) for r in rows}
    rows = influxdb.rows('SELECT count("current_l3_a") FROM "meter" WHERE time > now() - 1h '
                         'GROUP BY "station"')
    stations = sorted(ended & {str(r["station"]) for r in rows})
    assert stations, f"no three-phase station's session ended during the demo run (ended: {sorted(ended)})"
    return stations[0]


def test_after_a_demo_run_every_overview_and_station_panel_has_data_in_the_last_hour(
    influxdb: InfluxServer, tmp_path: Path,
) -> None:
    """The demo's accelerated fleet stamps messages with the wall clock and the CSMS stamps
    telemetry with its receive time: Grafana's default range shows the run."""
    done = _run_demo(influxdb, tmp_path, 20.0)
    assert done.returncode == 0, done.stderr[-3000:]
    station = _three_phase_station_with_ended_sessions(influxdb)  # the operator picks one with sessions
    empty = []
    for name in ("network-overview", "station-detail"):
        dashboard = json.loads((ROOT / "csms" / "telemetry" / "dashboards" / f"{name}.json").read_text())
        variables: dict[str, list[str]] = {"station": [station]}
        for var in dashboard["templating"]["list"]:
            if var["type"] == "query" and var["name"] not in variables:
                rows = influxdb.rows(expand(var["query"], variables))
                variables[var["name"]] = sorted({str(r["value"]) for r in rows})
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                query = expand(target["query"], variables)
                if any(field in query for field in NOT_IN_FLEET_DATA):
                    continue
                if not has_data(influxdb.query(query)):
                    empty.append(f"{name} / {panel['title']} / {target['refId']}: {query}")
    assert not empty, "panels without data in the last hour:\n" + "\n".join(empty)
