"""Telemetry throughput into a real InfluxDB 1.x, CPU cost per point, and the 60 s outage scenario.

    python -m bench.telemetry                # 100k points, v1 (influxd) and v2 (VictoriaMetrics)
    python -m bench.telemetry --points 300000
    python -m bench.telemetry --outage 60    # InfluxDB stopped 60 s at 250 points/s

Every point is a ``MeterSampled`` event published on the bus of a real ``CsmsApp``
with the InfluxDB plugin (10 fields: energy, power, 3 currents, 3 voltages, SoC,
transaction id), so the numbers include conversion, batching and HTTP.

* ``publish_us`` — CPU per point spent inside ``bus.publish`` (what an OCPP handler pays).
* ``cpu_us`` — all CPU of the CSMS process per point (conversion, batching, HTTP client
  threads), measured with ``time.process_time`` over the run; influxd's own CPU is not included.
* ``points_per_s`` — points offered as fast as possible and acknowledged by InfluxDB, per
  second of wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from csms.app import CsmsApp, running
from csms.config import load_settings
from csms.core.events import MeterSampled
from csms.core.model import MeterSample, SampledValue
from csms.logging import configure_logging
from csms.telemetry.influx import InfluxWriter
from csms.telemetry.plugin import influx_plugin

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "telemetry"))
from servers import InfluxServer, VictoriaServer

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def event(i: int, stations: int = 500) -> MeterSampled:
    """A realistic 10-field sample; ``energy_wh = i`` identifies the point, its time is unique."""
    sid = f"CP{i % stations:05d}"
    values = [SampledValue("Energy.Active.Import.Register", float(i), "Wh"),
              SampledValue("Power.Active.Import", 11000.0, "W"), SampledValue("SoC", 55.0, "Percent", None,
                                                                             None, "EV")]
    for ph in ("L1", "L2", "L3"):
        values.append(SampledValue("Current.Import", 16.0, "A", ph))
        values.append(SampledValue("Voltage", 230.0, "V", f"{ph}-N"))
    ts = BASE + timedelta(microseconds=i * 10)
    return MeterSampled(station_id=sid, sample=MeterSample(sid, 1, 1, ts, tuple(values), "tx1"))


def _settings(root: Path, url: str, api: str, **influx: Any) -> Any:
    cfg = {"url": url, "api": api, "batch_size": 5000, "flush_interval_s": 0.2, "health_interval_s": 60,
           "retry_initial_s": 0.5, "retry_max_s": 2.0, **influx}
    return load_settings(None, {"db": str(root / "csms.sqlite3"), "ocpp_port": 0, "api_port": 0,
                                "influx": cfg}, environ={})


async def _throughput(root: Path, url: str, api: str, points: int) -> dict[str, Any]:
    events = [event(i) for i in range(points)]
    async with running(_settings(root, url, api), plugins=[influx_plugin]) as app:
        writer: InfluxWriter = app.parts.influx
        publish_cpu = 0.0
        cpu0, t0 = time.process_time(), time.perf_counter()
        for start in range(0, points, 2000):  # yield between chunks, as a busy OCPP server would
            c = time.process_time()
            for ev in events[start:start + 2000]:
                app.bus.publish(ev)
            publish_cpu += time.process_time() - c
            await asyncio.sleep(0)
        await _until(lambda: writer.stats.written + writer.stats.rejected >= points)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        stats = writer.stats
    return {"api": api, "points": points, "points_per_s": round(points / wall),
            "publish_us": round(1e6 * publish_cpu / points, 2), "cpu_us": round(1e6 * cpu / points, 2),
            "spooled": stats.spooled, "dropped": stats.dropped_full + stats.dropped_memory,
            "rejected": stats.rejected}


async def _until(predicate: Callable[[], bool], timeout_s: float = 600.0) -> None:
    """Poll ``predicate`` every 10 ms; TimeoutError after ``timeout_s`` (bounded)."""
    for _ in range(int(timeout_s / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"not done within {timeout_s}s")


def _with_server(factory: Callable[[Path], Any], fn: Callable[[Path, Any], Any]) -> Any:
    with tempfile.TemporaryDirectory(prefix="csms-bench-") as tmp:
        root = Path(tmp)
        (root / "srv").mkdir()
        server = factory(root / "srv")
        server.start()
        try:
            if isinstance(server, InfluxServer):
                server.create_database()
            return fn(root, server)
        finally:
            server.stop()


def throughput(points: int, api: str = "v1") -> dict[str, Any]:
    """Sustained points/s and CPU per point into a private influxd (v1) or VictoriaMetrics (v2)."""
    factory = InfluxServer if api == "v1" else VictoriaServer
    return dict(_with_server(factory, lambda root, srv: asyncio.run(_throughput(root, srv.url, api, points))))


async def _outage(root: Path, server: InfluxServer, outage_s: float, rate: int) -> dict[str, Any]:
    async with running(_settings(root, server.url, "v1", batch_size=500), plugins=[influx_plugin]) as app:
        writer: InfluxWriter = app.parts.influx
        n = await _stream(app, 0, 5, rate)
        await asyncio.to_thread(server.stop)
        n = await _stream(app, n, outage_s, rate)
        buffered = writer.spool.lines
        await asyncio.to_thread(server.start)
        t_up = time.perf_counter()
        n = await _stream(app, n, 5, rate)
        await _until(lambda: writer.spool.empty() and writer.memory_points == 0 and not writer.stats.down)
        caught_up_s = time.perf_counter() - t_up
        dropped = writer.stats.dropped_full + writer.stats.dropped_memory
    stored = sorted(int(r["energy_wh"]) for r in server.rows('SELECT "energy_wh" FROM "meter"'))
    missing = len(set(range(n)) - set(stored))
    return {"outage_s": outage_s, "rate": rate, "points": n, "stored": len(stored), "missing": missing,
            "duplicates": len(stored) - len(set(stored)), "buffered_at_restart": buffered,
            "dropped": dropped, "caught_up_s": round(caught_up_s, 1),
            "exactly_once": missing == 0 and stored == list(range(n))}


async def _stream(app: CsmsApp, start: int, seconds: float, rate: int) -> int:
    loop = asyncio.get_running_loop()
    t0, i = loop.time(), start
    while (elapsed := loop.time() - t0) < seconds:
        while i < start + int(elapsed * rate):
            app.bus.publish(event(i))
            i += 1
        await asyncio.sleep(0.01)
    return i


def outage(outage_s: float = 60.0, rate: int = 250) -> dict[str, Any]:
    """The outage scenario: InfluxDB stopped ``outage_s`` during a ``rate`` points/s stream."""
    return dict(_with_server(InfluxServer, lambda root, srv: asyncio.run(_outage(root, srv, outage_s, rate))))


def run_quick() -> list[dict[str, Any]]:
    """A short run for ``python -m bench --quick``: 50k points each way, and a 5 s outage."""
    configure_logging("console", "error")
    return [throughput(50_000, "v1"), throughput(50_000, "v2"), outage(5.0, 250)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.telemetry", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--outage", type=float, default=0, help="run the outage scenario for SECONDS instead")
    parser.add_argument("--rate", type=int, default=250, help="points/s during the outage scenario")
    args = parser.parse_args(argv)
    configure_logging("console", "error")
    rows = [outage(args.outage, args.rate)] if args.outage else [
        throughput(args.points, "v1"), throughput(args.points, "v2")]
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
