"""Allocation time of the pure balancer against the size of the site.

    python -m bench.balancer                       # growth table, 1k .. 40k EVSEs
    python -m bench.balancer --chargers 10000 --feeders 500

The site is a 4-level tree: grid connection -> substations (50 feeders each) ->
feeders -> LV transformers (2 per feeder) -> EVSEs. 70 % of EVSEs are 3-phase
(16 or 32 A), 30 % single-phase on rotating grid phases; 85 % have an EV, some
capped by the EV or drawing less than allotted. Transformers are sized so that
demand exceeds capacity on most of them. ``cold`` is a first allocation (no
``previous``); ``tick`` is the steady state: the next allocation with the previous
one and fresh measurements, which is what the service runs on every tick.
Seeded, so runs are comparable.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from csms.balancer.allocate import Allocation, Demand, allocate
from csms.balancer.checks import check_allocation, jain_index
from csms.balancer.topology import Evse, Node, Topology

TARGET_MS = 50.0
"""The target: 10,000 EVSEs under 500 feeders in under 50 ms on one core."""


def build_site(chargers: int, feeders: int, seed: int = 1) -> tuple[Topology, list[Demand]]:
    """A seeded 4-level site with ``chargers`` EVSEs and their demands.

    city (no limit) -> substations (kW) -> MV feeders (kW) -> LV transformers
    (400/630 kVA) -> EVSEs. Every level carries the household load below it as base
    load, so the capacity left for EVs is a few amperes per EVSE on a transformer
    (evening peak); feeders and substations are sized slightly below the sum of
    their children, so every level binds somewhere.
    """
    rng = random.Random(seed)
    feeders = max(1, feeders)
    substations = max(1, feeders // 50)
    transformers = 2 * feeders
    per_trafo = chargers / transformers
    volts = 230.0
    kw_per_amp = 3 * volts / 1000  # a per-phase ampere on all three phases, in kW
    trafo_nodes = []
    for k in range(transformers):
        kva = rng.choice((400.0, 630.0))
        limit = kva / kw_per_amp
        ev_room = per_trafo * rng.uniform(4.0, 20.0)
        base = limit - ev_room
        trafo_nodes.append(
            Node(
                f"T{k}",
                f"F{k // 2}",
                limit_kw=kva,
                margin_a=2.0,
                base_load_a=(base * rng.uniform(0.97, 1.0), base, base * rng.uniform(0.97, 1.0)),
            )
        )
    feeder_nodes = []
    for f in range(feeders):
        kids = trafo_nodes[2 * f : 2 * f + 2]
        kva = sum(k.limit_kw or 0.0 for k in kids) * 0.95
        feeder_nodes.append(
            Node(f"F{f}", f"S{f % substations}", limit_kw=kva, margin_a=5.0, base_load_a=_sum(kids))
        )
    sub_nodes = []
    for s_ in range(substations):
        kids = feeder_nodes[s_::substations]
        kva = sum(k.limit_kw or 0.0 for k in kids) * 0.97
        sub_nodes.append(Node(f"S{s_}", "city", limit_kw=kva, margin_a=10.0, base_load_a=_sum(kids)))
    nodes = [Node("city"), *sub_nodes, *feeder_nodes, *trafo_nodes]
    evses: list[Evse] = []
    demands: list[Demand] = []
    for i in range(chargers):
        three_phase = rng.random() < 0.7
        evse = Evse(
            station_id=f"CP{i:05d}",
            evse_id=1,
            node=f"T{i % transformers}",
            phases=3 if three_phase else 1,
            phase_connection=None if three_phase else (i % 3 + 1,),
            max_a=rng.choice((16.0, 32.0)) if three_phase else 32.0,
            priority=2.0 if rng.random() < 0.05 else 1.0,
        )
        evses.append(evse)
        if rng.random() < 0.85:
            demands.append(
                Demand(
                    evse.station_id,
                    evse.evse_id,
                    ev_max_a=rng.choice((None, None, None, 10.0, 20.0)),
                    plugged_at=-rng.uniform(0, 3600),
                )
            )
    return Topology(nodes, evses, phase_voltage_v=volts), demands


def _sum(nodes: list[Node]) -> tuple[float, float, float]:
    """The base load of a node: everything non-EV below it."""
    return (
        sum(n.base_load_a[0] for n in nodes),
        sum(n.base_load_a[1] for n in nodes),
        sum(n.base_load_a[2] for n in nodes),
    )


def _next_demands(demands: list[Demand], result: Allocation, rng: random.Random) -> list[Demand]:
    """Demands of the next tick: measured draw near the allocation, some EVs drawing less."""
    out = []
    for d in demands:
        a = result.evse(d.station_id, d.evse_id).current_a
        draw = a * (0.4 if rng.random() < 0.1 else rng.uniform(0.95, 1.0))
        out.append(
            Demand(
                d.station_id,
                d.evse_id,
                measured_a=(draw, draw, draw),
                ev_max_a=d.ev_max_a,
                plugged_at=d.plugged_at,
            )
        )
    return out


def _timed(fn: Callable[[], Allocation]) -> tuple[Allocation, float, float]:
    """``fn()``, its wall time and its CPU time in ms (CPU time is steadier on a busy box)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def measure(chargers: int, feeders: int, repeat: int = 5) -> dict[str, Any]:
    """One row: cold and steady-state allocation times (median ms) and quality figures."""
    topology, demands = build_site(chargers, feeders)
    cold: list[float] = []
    for _ in range(repeat):
        first, wall, _ = _timed(lambda: allocate(topology, demands, now=0.0))
        cold.append(wall)
    rng = random.Random(2)
    result = first
    ticks: list[float] = []
    tick_cpu: list[float] = []
    for k in range(1, repeat + 1):
        nxt = _next_demands(demands, result, rng)
        previous = result
        result, wall, cpu = _timed(lambda: allocate(topology, nxt, previous, now=60.0 * k))  # noqa: B023
        ticks.append(wall)
        tick_cpu.append(cpu)
    trafos = [n for n in first.nodes if n.node_id.startswith("T") and n.utilisation > 0]
    # fairness among equal-priority EVSEs held back by the same full node
    priority = {e.station_id: e.priority for e in topology.evses}
    groups: dict[str, list[float]] = {}
    for a in first.evses:
        if a.reason.startswith("node:") and priority[a.station_id] == 1:
            groups.setdefault(a.reason, []).append(a.current_a)
    fairness = [jain_index(shares) for shares in groups.values() if len(shares) > 1]
    return {
        "chargers": chargers,
        "feeders": feeders,
        "nodes": len(topology.nodes),
        "with_ev": len(demands),
        "paused": sum(a.reason == "paused" for a in first.evses),
        "cold_ms": round(statistics.median(cold), 1),
        "tick_ms": round(statistics.median(ticks), 1),
        "tick_cpu_ms": round(statistics.median(tick_cpu), 1),
        "trafo_util": round(statistics.mean(n.utilisation for n in trafos), 3),
        "jain": round(statistics.mean(fairness), 3) if fairness else 1.0,
        "safe": not check_allocation(first) and not check_allocation(result),
    }


def run_quick() -> list[dict[str, Any]]:
    """A short run for ``python -m bench --quick``: up to the 10k/500 target size."""
    return [measure(n, f, repeat=3) for n, f in ((1000, 50), (10000, 500))]


def _print(rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    print("  ".join(f"{c:>10}" for c in cols))
    for row in rows:
        print("  ".join(f"{row[c]!s:>10}" for c in cols))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.balancer", description=__doc__)
    parser.add_argument("--chargers", type=int, help="EVSEs (default: a growth table)")
    parser.add_argument("--feeders", type=int, help="feeders (default: chargers / 20)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if args.chargers:
        sizes = [(args.chargers, args.feeders or max(1, args.chargers // 20))]
    else:
        sizes = [(1000, 50), (2500, 125), (5000, 250), (10000, 500), (20000, 1000), (40000, 2000)]
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} cores; times are medians of {args.repeat}")
    rows = [measure(n, f, args.repeat) for n, f in sizes]
    _print(rows)
    at_target = [r for r in rows if r["chargers"] == 10000 and r["feeders"] == 500]
    for r in at_target:
        verdict = "meets" if max(r["cold_ms"], r["tick_ms"]) < TARGET_MS else "misses"
        print(f"10k EVSEs / 500 feeders: {verdict} the {TARGET_MS:.0f} ms target")


if __name__ == "__main__":
    main()
