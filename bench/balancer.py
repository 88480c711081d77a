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
import random
import statistics
import time
from typing import Any

from csms.balancer.allocate import Allocation, Demand, allocate, check_allocation, jain_index
from csms.balancer.topology import Evse, Node, Topology

TARGET_MS = 50.0
"""Issue 5: 10,000 EVSEs under 500 feeders in under 50 ms on one core."""


def build_site(chargers: int, feeders: int, seed: int = 1) -> tuple[Topology, list[Demand]]:
    """A seeded 4-level site with ``chargers`` EVSEs and their demands."""
    rng = random.Random(seed)
    feeders = max(1, feeders)
    substations = max(1, feeders // 50)
    transformers = 2 * feeders
    per_trafo = chargers / transformers
    nodes = [Node("grid", limit_kw=0.25 * chargers * 11.0)]
    nodes += [Node(f"S{s}", "grid", limit_a=per_trafo * 12 * transformers / substations)
              for s in range(substations)]
    nodes += [Node(f"F{f}", f"S{f % substations}", limit_a=per_trafo * 22, margin_a=5)
              for f in range(feeders)]
    nodes += [
        Node(
            f"T{k}",
            f"F{k // 2}",
            limit_a=per_trafo * rng.uniform(8, 16),
            margin_a=2,
            base_load_a=(rng.uniform(0, 20), rng.uniform(0, 20), rng.uniform(0, 20)),
        )
        for k in range(transformers)
    ]
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
    return Topology(nodes, evses), demands


def _next_demands(demands: list[Demand], result: Allocation, rng: random.Random) -> list[Demand]:
    """Demands of the next tick: measured draw near the allocation, some EVs drawing less."""
    out = []
    for d in demands:
        a = result.evse(d.station_id, d.evse_id).current_a
        draw = a * (0.4 if rng.random() < 0.1 else rng.uniform(0.95, 1.0))
        out.append(
            Demand(d.station_id, d.evse_id, measured_a=(draw,), ev_max_a=d.ev_max_a,
                   plugged_at=d.plugged_at)
        )
    return out


def measure(chargers: int, feeders: int, repeat: int = 5) -> dict[str, Any]:
    """One row: cold and steady-state allocation times (median ms) and quality figures."""
    topology, demands = build_site(chargers, feeders)
    cold: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        first = allocate(topology, demands, now=0.0)
        cold.append((time.perf_counter() - start) * 1000)
    rng = random.Random(2)
    result = first
    ticks: list[float] = []
    for k in range(1, repeat + 1):
        nxt = _next_demands(demands, result, rng)
        start = time.perf_counter()
        result = allocate(topology, nxt, result, now=60.0 * k)
        ticks.append((time.perf_counter() - start) * 1000)
    running = [a.current_a for a in first.evses if a.current_a > 0]
    loaded = [n for n in first.nodes if n.node_id.startswith("T")]
    return {
        "chargers": chargers,
        "feeders": feeders,
        "nodes": len(topology.nodes),
        "with_ev": len(demands),
        "paused": sum(a.reason == "paused" for a in first.evses),
        "cold_ms": round(statistics.median(cold), 2),
        "tick_ms": round(statistics.median(ticks), 2),
        "trafo_util": round(statistics.mean(n.utilisation for n in loaded), 3),
        "jain": round(jain_index(running), 3),
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
    rows = [measure(n, f, args.repeat) for n, f in sizes]
    _print(rows)
    at_target = [r for r in rows if r["chargers"] == 10000 and r["feeders"] == 500]
    for r in at_target:
        verdict = "meets" if max(r["cold_ms"], r["tick_ms"]) < TARGET_MS else "MISSES"
        print(f"10k EVSEs / 500 feeders: {verdict} the {TARGET_MS:.0f} ms target")


if __name__ == "__main__":
    main()
