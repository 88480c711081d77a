"""What the simulator fleet itself costs: CPU per OCPP call, and how many chargers one process holds.

The CSMS runs in its own process (pinned to core 0 when there are two); the fleet runs
in this process (core 1) through the public ``run_fleet`` API. CPU is measured over a
steady window after the ramp-up, from this process's rusage, and divided by the calls
in that window (ours and the CSMS's), so the figure is the fleet's own cost per message.

    python -m bench.fleet_cost                         # cost per call, 1.6 and 2.0.1
    python -m bench.fleet_cost --chargers 2000 --meter-interval 2
    python -m bench.fleet_cost --hold 5000             # 5,000 chargers, realistic intervals
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.procs import Server, rss_bytes
from simulators.arrivals import ArrivalConfig
from simulators.fleet import FleetConfig, run_fleet
from simulators.metrics import Histogram, Progress
from simulators.report import progress_line
from simulators.runtime import fast_loop, raise_nofile, tune_gc
from simulators.scenario import ChargerModel, load_scenario


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pin_self(cpu: int) -> None:
    if (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


async def _measure(
    url: str, *, protocol: str, chargers: int, meter_interval_s: float, heartbeat_s: float,
    window_s: float, ramp_per_s: float, server: Server,
) -> dict[str, Any]:
    """Run a fleet; CPU and calls over the window after every charger is connected and charging."""
    base = load_scenario("default")
    scenario = replace(
        base.with_options(chargers=chargers, protocol=protocol, ramp_up_per_s=ramp_per_s,
                          id_prefix=f"COST{protocol.replace('.', '')}-",
                          duration_s=0.0),
        meter_interval_s=meter_interval_s, heartbeat_interval_s=heartbeat_s,
        models=(ChargerModel("ac11", evses=1, max_current_a=16),),
        arrivals=ArrivalConfig(first_within_wall_s=1.0, first_share=1.0, sessions_per_day=0,
                               dwell_mean_s=86_400, dwell_min_s=86_400, dwell_max_s=86_400),
    )
    stop = asyncio.Event()
    marks: list[tuple[float, float, float, int]] = []  # (wall, own cpu, server cpu, calls)
    windows: list[Histogram] = []  # latency of each progress window
    ramp_s = chargers / ramp_per_s + 5.0  # connected, booted, sessions started

    def on_progress(p: Progress) -> None:
        if stop.is_set():
            return  # the fleet is stopping: not steady state any more
        marks.append((time.monotonic(), _cpu_s(), server.cpu(), p.calls))
        windows.append(p.window_latency)
        if p.elapsed_s >= ramp_s + window_s:
            stop.set()

    report = await run_fleet(FleetConfig(csms_url=url, scenario=scenario, progress_interval_s=1.0),
                             stop=stop, progress=on_progress)
    first = next(i for i, m in enumerate(marks) if m[0] - marks[0][0] >= ramp_s - 1.0)
    last = len(marks) - 1
    start, end = marks[first], marks[last]
    latency = Histogram()
    for window in windows[first + 1 : last + 1]:
        latency.merge(window)
    calls = end[3] - start[3]
    seconds = end[0] - start[0]
    return {
        "protocol": protocol,
        "chargers": chargers,
        "meter_interval_s": meter_interval_s,
        "window_s": round(seconds, 1),
        "calls": calls,
        "calls_per_s": round(calls / seconds, 1),
        "fleet_us_per_call": round((end[1] - start[1]) / calls * 1e6, 1),
        "fleet_cpu_percent": round((end[1] - start[1]) / seconds * 100, 1),
        "csms_us_per_call": round((end[2] - start[2]) / calls * 1e6, 1),
        "p50_ms": round(latency.quantile(0.5) * 1e3, 2),
        "p99_ms": round(latency.quantile(0.99) * 1e3, 2),
        "protocol_errors": report.protocol_errors,
        "peak_connected": report.data["connections"]["peak_connected"],
        "connect_failures": sum(report.data["connections"]["failures_by_kind"].values()),
    }


# The CSMS's admission control (64 handshakes in progress per IP, 500/s) protects it from
# floods; a fleet on one loopback IP is one, so the benchmark CSMS lifts it, and commits
# with synchronous=NORMAL so auto-registering thousands of stations does not dominate.
_CSMS_CONFIG = """
db_synchronous = "NORMAL"
[limits]
max_pre_auth_per_ip = 0
max_pre_auth_total = 0
accept_rate = 0
"""


def _server() -> Server:
    """Our CSMS in its own process (core 0), auto-registering, accepting any id tag."""
    path = Path(tempfile.mkdtemp(prefix="fleet-cost-")) / "csms.toml"
    path.write_text(_CSMS_CONFIG)
    return Server("csms", cpu=0, extra=["--accept-unknown-tags", "--config", str(path)])


def measure(
    protocol: str, *, chargers: int = 500, meter_interval_s: float = 1.0, heartbeat_s: float = 5.0,
    window_s: float = 8.0, ramp_per_s: float = 500.0,
) -> dict[str, Any]:
    """Fleet CPU per call against our CSMS (in its own process) for one protocol."""
    raise_nofile()
    _pin_self(1)
    server = _server()
    try:
        return fast_loop(_measure(
            server.url, protocol=protocol, chargers=chargers, meter_interval_s=meter_interval_s,
            heartbeat_s=heartbeat_s, window_s=window_s, ramp_per_s=ramp_per_s, server=server))
    finally:
        server.stop()


def run_quick() -> list[dict[str, Any]]:
    """A short run for ``python -m bench --quick``: 500 chargers, meter values every second."""
    return [measure(p) for p in ("1.6", "2.0.1")]


async def _hold(
    url: str, chargers: int, duration_s: float, ramp_per_s: float, server: Server
) -> dict[str, Any]:
    """Many chargers on realistic intervals: mixed versions, meter values every 60 s, the
    CSMS's heartbeat interval (300 s), 60 % of EVSEs charging, their sessions spread over
    the first minute (so meter values are spread too)."""
    base = load_scenario("default").with_options(chargers=chargers, ramp_up_per_s=ramp_per_s,
                                                 id_prefix="HOLD", duration_s=duration_s)
    scenario = replace(base, meter_interval_s=60.0, arrivals=replace(
        base.arrivals, first_within_wall_s=60.0, first_share=0.6, sessions_per_day=4.0,
        dwell_mean_s=7200.0, dwell_min_s=1800.0, dwell_max_s=14_400.0))
    peak = {"connected": 0}
    t0 = time.monotonic()
    cpu0 = _cpu_s()
    connected_at: list[float] = []

    def on_progress(p: Progress) -> None:
        peak["connected"] = max(peak["connected"], p.connected)
        if p.connected >= chargers and not connected_at:
            connected_at.append(time.monotonic() - t0)
        print(f"{progress_line(p)}  rss {rss_bytes(os.getpid()) / 2**20:.0f} MiB", flush=True)

    report = await run_fleet(FleetConfig(csms_url=url, scenario=scenario, progress_interval_s=10.0),
                             progress=on_progress)
    elapsed = time.monotonic() - t0
    return {
        "chargers": chargers,
        "peak_connected": report.data["connections"]["peak_connected"],
        "all_connected_after_s": round(connected_at[0], 1) if connected_at else None,
        "fleet_rss_mib": round(rss_bytes(os.getpid()) / 2**20),
        "fleet_kib_per_charger": round(rss_bytes(os.getpid()) / 1024 / chargers, 1),
        "fleet_cpu_percent": round((_cpu_s() - cpu0) / elapsed * 100, 1),
        "csms_rss_mib": round(server.rss() / 2**20),
        "calls": report.data["calls"]["total"],
        "calls_per_s": report.data["calls"]["per_second"],
        "transactions_started": report.data["transactions"]["started"],
        "latency_ms": report.data["latency_ms"],
        "latency_ms_until_stop": report.data["latency_ms_until_stop"],
        "protocol_errors": report.protocol_errors,
        "errors": report.data["errors"]["by_kind"],
        "connect_failures": report.data["connections"]["failures_by_kind"],
    }


def hold(chargers: int, duration_s: float, ramp_per_s: float) -> dict[str, Any]:
    """Verify that one process holds ``chargers`` connected chargers against our CSMS."""
    raise_nofile()
    tune_gc()
    _pin_self(1)
    server = _server()
    try:
        return fast_loop(_hold(server.url, chargers, duration_s, ramp_per_s, server))
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chargers", type=int, default=500)
    parser.add_argument("--meter-interval", type=float, default=1.0, help="seconds between meter values")
    parser.add_argument("--window", type=float, default=10.0, help="measured seconds after ramp-up")
    parser.add_argument("--hold", type=int, metavar="N",
                        help="instead: hold N chargers on realistic intervals")
    parser.add_argument("--duration", type=float, default=120.0, help="--hold run time (s)")
    parser.add_argument("--ramp-up", type=float, default=100.0, help="connections per second")
    args = parser.parse_args(argv)
    if args.hold:
        for key, value in hold(args.hold, args.duration, args.ramp_up).items():
            print(f"{key:>24}: {value}")
        return
    rows = [measure(p, chargers=args.chargers, meter_interval_s=args.meter_interval, window_s=args.window,
                    ramp_per_s=args.ramp_up) for p in ("1.6", "2.0.1")]
    cols = list(rows[0])
    print("  ".join(f"{c:>17}" for c in cols))
    for row in rows:
        print("  ".join(f"{row[c]!s:>17}" for c in cols))


if __name__ == "__main__":
    main()
