"""InfluxDB outages: nothing lost, nothing duplicated; the disk buffer survives restarts; drops are counted.

The outage lasts ``CSMS_TELEMETRY_OUTAGE_S`` seconds (default 6, to keep CI fast);
``python -m bench.telemetry --outage 60`` runs the issue's full 60 s scenario.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ocpp_driver import wait_until
from servers import InfluxServer

from csms.app import CsmsApp, running
from csms.config import InfluxConfig
from csms.core.events import MeterSampled
from csms.core.model import MeterSample, SampledValue
from csms.telemetry.influx import InfluxWriter, WriterSettings, make_transport
from csms.telemetry.plugin import influx_plugin
from csms.telemetry.spool import Spool
from tests.conftest import make_settings

OUTAGE_S = float(os.environ.get("CSMS_TELEMETRY_OUTAGE_S", "6"))
RATE = 250  # points per second, above the 200
BASE = datetime(2026, 1, 1, tzinfo=UTC)


def sample_event(i: int) -> MeterSampled:
    """Point ``i``: its own station-time timestamp and ``energy_wh = i`` (to find gaps and duplicates)."""
    ts = BASE + timedelta(milliseconds=i)
    values = (SampledValue("Energy.Active.Import.Register", float(i), "Wh"),
              SampledValue("Power.Active.Import", 7000.0, "W"))
    sid = f"CP{i % 10:02d}"
    return MeterSampled(station_id=sid, sample=MeterSample(sid, 1, 1, ts, values, "tx"))


async def stream(app: CsmsApp, start: int, seconds: float) -> int:
    """Publish ``RATE`` samples per second on the bus for ``seconds``; returns the next index."""
    loop = asyncio.get_running_loop()
    t0, i = loop.time(), start
    while (elapsed := loop.time() - t0) < seconds:
        due = start + int(elapsed * RATE)
        while i < due:
            app.bus.publish(sample_event(i))
            i += 1
        await asyncio.sleep(0.01)
    return i


def stored_indexes(server: InfluxServer) -> list[int]:
    rows = server.rows('SELECT "energy_wh" FROM "meter"')
    return sorted(int(r["energy_wh"]) for r in rows)


async def test_outage_during_a_steady_stream_loses_and_duplicates_nothing(
    influxdb: InfluxServer, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, influx={
        "url": influxdb.url, "api": "v1", "flush_interval_s": 0.2, "batch_size": 500,
        "retry_initial_s": 0.25, "retry_max_s": 1.0, "health_interval_s": 60,
    })
    async with running(settings, plugins=[influx_plugin]) as app:
        writer: InfluxWriter = app.parts.influx
        n = await stream(app, 0, 3)
        await asyncio.to_thread(influxdb.stop)
        n = await stream(app, n, OUTAGE_S)
        assert writer.stats.down and writer.spool.lines > 0
        await asyncio.to_thread(influxdb.start)
        n = await stream(app, n, 3)
        await wait_until(lambda: writer.spool.empty() and writer.memory_points == 0 and not writer.stats.down,
                         timeout_s=30)
        spooled, dropped = writer.stats.spooled, writer.stats.dropped_full + writer.stats.dropped_memory
    assert n >= RATE * (6 + OUTAGE_S) * 0.9
    assert spooled >= RATE * OUTAGE_S * 0.8 and dropped == 0
    assert stored_indexes(influxdb) == list(range(n))  # every point exactly once


async def test_buffer_on_disk_is_replayed_by_the_next_csms_process(tmp_path: Path) -> None:
    server = InfluxServer(tmp_path)
    settings = make_settings(tmp_path, influx={"url": server.url, "api": "v1", "flush_interval_s": 0.05,
                                               "retry_initial_s": 0.1, "retry_max_s": 0.2})
    async with running(settings, plugins=[influx_plugin]) as app:  # InfluxDB is not running yet
        for i in range(2000):
            app.bus.publish(sample_event(i))
        writer: InfluxWriter = app.parts.influx
        await wait_until(lambda: writer.stats.down)
    assert len(list((tmp_path / "telemetry-buffer").glob("*.seg"))) >= 1
    server.start()
    try:
        server.create_database()
        async with running(settings, plugins=[influx_plugin]) as app:
            writer = app.parts.influx
            await wait_until(lambda: writer.spool.empty() and writer.stats.written >= 2000)
        assert stored_indexes(server) == list(range(2000))
        assert not list((tmp_path / "telemetry-buffer").glob("*.seg"))
    finally:
        server.stop()


async def test_full_disk_buffer_drops_newest_points_and_counts_them(tmp_path: Path) -> None:
    server = InfluxServer(tmp_path)  # never started: connection refused
    cfg = InfluxConfig(url=server.url, api="v1", batch_size=100, flush_interval_s=0.02, retry_initial_s=5)
    spool = Spool(tmp_path / "buf", max_bytes=20_000, segment_bytes=4096)
    writer = InfluxWriter(make_transport(cfg), spool, WriterSettings.from_config(cfg))
    writer.start()
    line = "meter,station=CP1 power_w=1.0 {}"
    for i in range(2000):
        writer.offer(line.format(i))
        if i % 100 == 0:
            await asyncio.sleep(0.01)
    await wait_until(lambda: writer.stats.spooled + writer.stats.dropped_full == 2000)
    assert spool.size <= 20_000 and writer.stats.dropped_full > 0
    assert spool.lines == writer.stats.spooled
    await writer.close(timeout_s=0.5)
