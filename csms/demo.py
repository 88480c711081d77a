"""``csms demo``: the CSMS on embedded defaults, a simulated fleet, the console, and a grid.

The fleet hangs under a small feeder tree (one transformer, two feeders) sized so that
one feeder has far more demand than capacity: the balancer has work to do from the start.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
from pathlib import Path

from csms.app import CsmsApp, default_plugins
from csms.config import BalancerConfig, Settings
from csms.errors import ConfigError
from csms.runtime import stop_on_signals, wait_stopped
from csms.tariffs import codec
from simulators.fleet import FleetConfig, run_fleet
from simulators.metrics import Progress
from simulators.scenario import GridNode, Scenario, ScenarioError, balancer_topology, load_scenario

DEMO_GRID = (
    # id, parent, per-phase limit (A), share of the fleet
    ("TRAFO-1", None, 250.0, 0.0),
    ("FEEDER-A", "TRAFO-1", 63.0, 0.5),   # tight: evening demand well above capacity
    ("FEEDER-B", "TRAFO-1", 160.0, 0.5),
)


def _scenario(args: argparse.Namespace) -> Scenario:
    try:
        scenario = load_scenario(args.scenario or "demo")
        protocol = {"1.6": "1.6", "2.0.1": "2.0.1"}.get(args.protocol, "mixed")
        scenario = scenario.with_options(chargers=args.chargers, protocol=protocol, id_prefix="DEMO",
                                         signed_meter_values=True)
    except (ScenarioError, ValueError) as exc:
        raise ConfigError(f"scenario: {exc}") from None
    if not scenario.grid:
        grid = tuple(GridNode(id=i, parent=p, limit_a=lim, chargers=share) for i, p, lim, share in DEMO_GRID)
        scenario = dataclasses.replace(scenario, grid=grid)
    return scenario


def demo_settings(
    settings: Settings, args: argparse.Namespace, scenario: Scenario, data_dir: Path
) -> Settings:
    """The demo's settings: temporary database, open registration, the scenario's grid."""
    topo = balancer_topology(scenario)
    explicit_db = args.db is not None
    return settings.model_copy(update={
        "db": settings.db if explicit_db else str(data_dir / "demo.sqlite3"),
        "db_synchronous": "NORMAL",
        "auto_register": True,
        "accept_unknown_tags": True,
        "heartbeat_interval_s": 60,
        "balancer": BalancerConfig(
            enabled=True, tick_s=2.0, min_interval_per_station_s=2.0,
            nodes=tuple(topo["nodes"]), evses=tuple(topo["evses"]),
        ),
    })


DEMO_TARIFF = {
    "tariff_id": "city-standard", "currency": "EUR", "vat_percent": "19", "idle_grace_s": 300,
    "alt_text": [{"language": "en", "text": "0.40 EUR/kWh (0.55 from 17:00 to 20:00), 1.00 EUR per session, "
                                            "0.10 EUR/min idle after 5 min"}],
    "elements": [
        {"price_components": [{"type": "ENERGY", "price": "0.55"}],
         "restrictions": {"start_time": "17:00", "end_time": "20:00"}},
        {"price_components": [{"type": "ENERGY", "price": "0.40"}, {"type": "FLAT", "price": "1.00"},
                              {"type": "PARKING_TIME", "price": "6.00", "step_size": 60}]},
    ],
}


async def _seed_tariff(app: CsmsApp) -> bool:
    """Price every demo session, so the console shows running costs and charge records."""
    tariffs = app.parts.tariffs
    if tariffs is None:
        return False
    if await tariffs.store.get_tariff(DEMO_TARIFF["tariff_id"]) is None:  # type: ignore[arg-type]
        await tariffs.store.save_tariff(codec.from_json(DEMO_TARIFF))
    if not await tariffs.store.assignments():
        await tariffs.store.assign("default", "", str(DEMO_TARIFF["tariff_id"]))
    return True


def _banner(app: CsmsApp, scenario: Scenario) -> str:
    return "\n".join([
        "",
        "  csms demo is running",
        f"    console        {app.api_url}/",
        f"    API docs       {app.api_url}/docs",
        f"    metrics        {app.api_url}/metrics",
        f"    feeders        {app.api_url}/api/feeders",
        f"    OCPP endpoint  {app.ocpp_url}/{{station_id}}  (subprotocols ocpp1.6, ocpp2.0.1)",
        f"    fleet          {scenario.chargers} simulated chargers ({scenario.protocol}), ids "
        f"{scenario.station_id(0)}..{scenario.station_id(scenario.chargers - 1)}",
        f"    database       {app.settings.db}",
        f"    billing        tariff {DEMO_TARIFF['tariff_id']} for every session (signed OCMF readings): "
        f"{app.api_url}/#/cdrs",
        "  Ctrl-C stops it.",
        "",
    ])


async def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    if args.chargers < 1:
        raise ConfigError("--chargers must be at least 1")
    scenario = _scenario(args)
    with tempfile.TemporaryDirectory(prefix="csms-demo-") as tmp:
        s = demo_settings(settings, args, scenario, Path(tmp))
        app = CsmsApp(s, plugins=default_plugins(s))
        stop = stop_on_signals()
        try:
            await app.start()
            await _seed_tariff(app)
            print(_banner(app, scenario), file=sys.stderr, flush=True)

            def progress(p: Progress) -> None:
                print(f"  [{p.elapsed_s:6.0f}s] connected {p.connected:5d}  calls/s {p.rate_text(7)}  "
                      f"sessions started {p.transactions_started:5d} stopped {p.transactions_stopped:5d}  "
                      f"errors {p.errors}", file=sys.stderr, flush=True)

            fleet = asyncio.create_task(run_fleet(
                FleetConfig(csms_url=app.ocpp_url, scenario=scenario, duration_s=0, progress_interval_s=10.0),
                stop=stop, progress=progress,
            ))
            await wait_stopped(stop, args.duration)
            stop.set()
            report = await fleet
            print("\n" + report.summary(), file=sys.stderr, flush=True)
            return 0
        finally:
            await app.stop()
