"""Points reach a real InfluxDB 1.x (v1 /write) and a real v2 write API (VictoriaMetrics)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from ocpp_driver import drive_v16, drive_v201, wait_until
from servers import InfluxServer, VictoriaServer

from csms.app import running
from csms.config import InfluxConfig
from csms.telemetry.influx import InfluxWriter, WriterSettings, make_transport
from csms.telemetry.points import make_point
from csms.telemetry.spool import Spool
from tests.conftest import make_settings

T0 = 1_750_000_000_000_000_000  # a fixed instant, in ns


def _expected(n: int) -> list[dict[str, Any]]:
    return [
        {"time": T0 + i * 1_000_000, "station": f"CP{i % 3}", "evse": str(1 + i % 2),
         "power_w": 100.0 * i + 0.5, "seq": i}
        for i in range(n)
    ]


def _lines(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in rows:
        p = make_point("meter", {"station": r["station"], "evse": r["evse"]},
                       [("power_w", r["power_w"]), ("seq", r["seq"])], r["time"])
        assert p is not None
        out.append(p.line())
    return out


def _writer(cfg: InfluxConfig, tmp_path: Path) -> InfluxWriter:
    spool = Spool(tmp_path / "buffer", max_bytes=64 << 20, segment_bytes=256 << 10)
    return InfluxWriter(make_transport(cfg), spool, WriterSettings.from_config(cfg))


async def test_points_written_with_v1_api_read_back_identical(influxdb: InfluxServer, tmp_path: Path) -> None:
    cfg = InfluxConfig(url=influxdb.url, api="v1", database="csms", batch_size=100, flush_interval_s=0.05)
    writer = _writer(cfg, tmp_path)
    writer.start()
    expected = _expected(1000)
    for line in _lines(expected):
        writer.offer(line)
    await wait_until(lambda: writer.stats.written >= len(expected))
    await writer.close()
    rows = influxdb.rows('SELECT "power_w", "seq" FROM "meter" GROUP BY "station", "evse"')
    assert sorted(rows, key=lambda r: r["seq"]) == expected
    assert writer.stats.spooled == writer.stats.dropped_full == writer.stats.rejected == 0


async def test_points_written_with_v2_api_read_back_identical(
    victoria: VictoriaServer, tmp_path: Path
) -> None:
    cfg = InfluxConfig(url=victoria.url, api="v2", org="csms", bucket="csms", token="unused",
                       batch_size=100, flush_interval_s=0.05)
    writer = _writer(cfg, tmp_path)
    writer.start()
    expected = _expected(300)
    for line in _lines(expected):
        writer.offer(line)
    await wait_until(lambda: writer.stats.written >= len(expected))
    await writer.close()
    got: dict[tuple[int, str, str], float] = {}
    for series in await asyncio.to_thread(victoria.export, '{__name__="meter_power_w"}'):
        for ts_ms, value in zip(series["timestamps"], series["values"], strict=True):
            got[(ts_ms, series["metric"]["station"], series["metric"]["evse"])] = value
    want = {(r["time"] // 1_000_000, r["station"], r["evse"]): r["power_w"] for r in expected}
    assert got == want


async def test_missing_database_is_created_and_nothing_lost(tmp_path: Path) -> None:
    server = InfluxServer(tmp_path)  # no CREATE DATABASE: the writer's first write gets 404
    server.start()
    try:
        cfg = InfluxConfig(url=server.url, api="v1", database="fresh", flush_interval_s=0.05,
                           retry_initial_s=0.05, retry_max_s=0.2)
        writer = _writer(cfg, tmp_path)
        writer.start()
        expected = _expected(50)
        for line in _lines(expected):
            writer.offer(line)
        await wait_until(lambda: writer.spool.empty() and writer.stats.written >= len(expected))
        await writer.close()
        assert server.query('SELECT count("seq") FROM "meter"', db="fresh")[0]["values"][0][1] == 50
    finally:
        server.stop()


async def test_malformed_points_are_rejected_and_counted_not_retried(
    influxdb: InfluxServer, tmp_path: Path
) -> None:
    cfg = InfluxConfig(url=influxdb.url, api="v1", flush_interval_s=0.05)
    writer = _writer(cfg, tmp_path)
    writer.start()
    writer.offer("meter,station=CP1 power_w=1.0 1")
    await wait_until(lambda: writer.stats.written == 1)
    writer.offer('meter,station=CP1 power_w="text" 2')  # field type conflict: HTTP 400
    await wait_until(lambda: writer.stats.rejected == 1)
    await writer.close()
    assert writer.stats.spooled == 0 and writer.spool.empty()


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_csms_meter_values_of_both_protocols_reach_influxdb(
    api: str, influxdb: InfluxServer, victoria: VictoriaServer, tmp_path: Path
) -> None:
    url = influxdb.url if api == "v1" else victoria.url
    settings = make_settings(tmp_path, influx={"url": url, "api": api, "flush_interval_s": 0.05,
                                               "health_interval_s": 0.2})
    from csms.telemetry.plugin import influx_plugin

    async with running(settings, plugins=[influx_plugin]) as app:
        await drive_v16(app.ocpp_url, "CP16", samples=3)
        await drive_v201(app.ocpp_url, "CP201", samples=3)
        writer = app.parts.influx
        await wait_until(lambda: writer.stats.written >= writer.stats.offered > 0)
    if api == "v1":
        rows = influxdb.rows('SELECT * FROM "meter" WHERE "station" = \'CP16\'')
        assert len(rows) == 3
        last = max(rows, key=lambda r: r["time"])
        assert last["power_w"] == 10800.0 and last["energy_wh"] == 1750.0 and last["soc_pct"] == 42.0
        assert last["current_l1_a"] == last["current_l3_a"] == 16.0 and last["voltage_l2_v"] == 230.0
        tags = (last["vendor"], last["model"], last["protocol"], last["evse"])
        assert tags == ("ACME", "AC22", "ocpp1.6", "1")
        v201 = influxdb.rows('SELECT * FROM "meter" WHERE "station" = \'CP201\'')
        assert {r["protocol"] for r in v201} == {"ocpp2.0.1"} and len(v201) == 1 + 3 + 3 + 1
        assert max(r["energy_wh"] for r in v201) == 5000.0 + 3 * 400 + 10
        ended = influxdb.rows('SELECT * FROM "session" WHERE "event" = \'ended\'')
        assert sorted((r["station"], r["energy_wh"]) for r in ended) == [("CP16", 750.0), ("CP201", 1210.0)]
        statuses = influxdb.rows('SELECT "status" FROM "status" WHERE "station" = \'CP16\'')
        assert [r["status"] for r in sorted(statuses, key=lambda r: r["time"])] == [
            "Available", "Preparing", "Charging", "Finishing"]
        assert influxdb.rows('SELECT "stations_connected" FROM "csms"')
    else:
        match = '{__name__="meter_power_w",station="CP16"}'
        def all_three() -> bool:  # VictoriaMetrics indexes new series lazily, and samples trickle in
            rows = victoria.export(match)
            return bool(rows) and len(rows[0]["values"]) >= 3

        await wait_until(all_three)
        series = victoria.export(match)
        assert sorted(series[0]["values"]) == [10800.0, 10900.0, 11000.0]
        assert series[0]["metric"]["protocol"] == "ocpp1.6"
