"""Property-based tests of allocate(): safety (D8), bounds, max-min fairness, rotation.

Random forests of up to 10 nodes with random per-phase and kW limits, margins and
base loads; up to 20 EVSEs (1- and 3-phase, rotated connections, random minimum,
maximum and priority) with random demands.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from csms.balancer.allocate import Allocation, AllocationSettings, Demand, allocate
from csms.balancer.checks import check_allocation
from csms.balancer.topology import PHASES, Evse, Node, Topology

EXACT = AllocationSettings(resolution_a=0.0, hysteresis_a=0.0)
TOL = 1e-6

# Halves and integers make ties (equal shares, exact fits) common, which is where bugs hide.
amperes = st.integers(0, 160).map(lambda v: v / 2)


@dataclass
class Site:
    topology: Topology
    demands: list[Demand]


@st.composite
def sites(draw: st.DrawFn, *, fixed_loads: bool = True, measured: bool = True) -> Site:
    nodes: list[Node] = []
    for k in range(draw(st.integers(1, 10))):
        parent = None if k == 0 or draw(st.integers(0, 7)) == 0 else f"N{draw(st.integers(0, k - 1))}"
        nodes.append(
            Node(
                f"N{k}",
                parent,
                limit_a=draw(st.none() | amperes),
                limit_kw=draw(st.none() | st.none() | st.integers(0, 60).map(float)),
                margin_a=draw(st.sampled_from([0.0, 0.0, 1.0, 2.5])),
                base_load_a=draw(
                    st.tuples(amperes, amperes, amperes).map(lambda b: (b[0] / 4, b[1] / 4, b[2] / 4))
                ),
            )
        )
    evses: list[Evse] = []
    demands: list[Demand] = []
    for j in range(draw(st.integers(0, 20))):
        phases = draw(st.sampled_from([1, 3]))
        rotation = tuple(draw(st.permutations([1, 2, 3])))
        min_a = draw(st.sampled_from([0.0, 6.0, 6.0, 6.0, 8.0, 10.0]))
        evse = Evse(
            f"S{j:02d}",
            draw(st.integers(1, 2)),
            f"N{draw(st.integers(0, len(nodes) - 1))}",
            phases=phases,
            phase_connection=rotation[:phases],
            min_a=min_a,
            max_a=draw(st.integers(int(min_a) + 1, 40).map(float)),
            priority=draw(st.sampled_from([0.5, 1.0, 1.0, 1.0, 2.0, 3.0])),
        )
        evses.append(evse)
        if draw(st.integers(0, 4)):
            demands.append(
                Demand(
                    evse.station_id,
                    evse.evse_id,
                    ev_max_a=draw(st.none() | st.none() | amperes.map(lambda a: a / 2)),
                    phases_in_use=draw(st.none() | st.just(1)) if phases == 3 else None,
                    measured_a=draw(st.none() | st.tuples(amperes, amperes, amperes)) if measured else None,
                    plugged_at=draw(st.none() | st.integers(-3600, 0).map(float)),
                    fixed_a=draw(st.none() | st.none() | st.none() | amperes) if fixed_loads else None,
                )
            )
    return Site(Topology(nodes, evses), demands)


def upper_bound(evse: Evse, demand: Demand) -> float:
    cap = evse.max_a if demand.ev_max_a is None else min(evse.max_a, demand.ev_max_a)
    return max(cap, evse.min_a)


def grid_phases(evse: Evse, phases: int) -> tuple[int, ...]:
    return evse.grid_phases[:phases]


def loads(allocation: Allocation) -> dict[tuple[str, int], float]:
    """Allocated current per (node id, grid phase), fixed loads excluded."""
    t = allocation.topology
    out: dict[tuple[str, int], float] = {}
    for evse, a in zip(t.evses, allocation.evses, strict=True):
        if a.reason == "fixed":
            continue
        for node in t.parent_chain(evse.node):
            for ph in grid_phases(evse, a.phases):
                out[node, ph] = out.get((node, ph), 0.0) + a.current_a
    return out


def capacity(allocation: Allocation, node: str, ph: int) -> float:
    return allocation.node(node).available_a[ph]


@settings(max_examples=200, deadline=None)
@given(sites(), st.integers(0, 2**32 - 1))
def test_no_node_limit_is_exceeded_and_allocations_respect_min_and_max(site: Site, seed: int) -> None:
    rng = random.Random(seed)
    t = site.topology
    first = allocate(t, site.demands, now=0.0)
    assert check_allocation(first) == []
    # a tick later: a limit cut somewhere, new measurements, hysteresis and rotation at work
    cut = t.with_limit(rng.choice(t.nodes).id, rng.choice([0.0, 6.0, 13.5, 40.0]))
    later = allocate(cut, site.demands, first, now=rng.choice([10.0, 60.0, 1000.0]))
    for result in (first, later):
        assert check_allocation(result) == []
        totals: dict[tuple[str, int], float] = {}
        for evse, a in zip(result.topology.evses, result.evses, strict=True):
            for node in result.topology.parent_chain(evse.node):
                for ph in grid_phases(evse, a.phases):
                    totals[node, ph] = totals.get((node, ph), 0.0) + a.current_a
        for load in result.nodes:
            for ph in range(PHASES):
                assert math.isclose(load.allocated_a[ph], totals.get((load.node_id, ph), 0.0), abs_tol=TOL)
        for evse, a in zip(result.topology.evses, result.evses, strict=True):
            assert a.current_a >= 0
            if a.reason in ("idle", "paused"):
                assert a.current_a == 0
            elif a.reason != "fixed":
                assert evse.min_a <= a.current_a <= evse.max_a


@settings(max_examples=200, deadline=None)
@given(sites(fixed_loads=False, measured=False))
def test_allocation_is_max_min_fair(site: Site) -> None:
    """Nobody can get more without taking from someone with no more (per priority).

    For every admitted EVSE below its upper bound there is a full (node, phase) on
    its path where every other EVSE has at most its priority-normalised share, or
    sits at its own minimum (which cannot be lowered).
    """
    result = allocate(site.topology, site.demands, now=0.0, settings=EXACT)
    t = result.topology
    demand = {d.key: d for d in site.demands}
    load = loads(result)
    members: dict[tuple[str, int], list[tuple[Evse, float]]] = {}
    for evse, a in zip(t.evses, result.evses, strict=True):
        for node in t.parent_chain(evse.node):
            for ph in grid_phases(evse, a.phases):
                members.setdefault((node, ph), []).append((evse, a.current_a))
    for evse, a in zip(t.evses, result.evses, strict=True):
        if a.reason in ("idle", "paused") or a.current_a >= upper_bound(evse, demand[evse.key]) - TOL:
            continue
        share = a.current_a / evse.priority
        bottlenecks = [
            (node, ph)
            for node in t.parent_chain(evse.node)
            for ph in grid_phases(evse, a.phases)
            if load.get((node, ph), 0.0) >= capacity(result, node, ph) - TOL
            and all(
                x / other.priority <= share + TOL or x <= other.min_a + TOL
                for other, x in members[node, ph]
                if x > 0
            )
        ]
        assert bottlenecks, f"{evse.key} at {a.current_a} A could get more"


@settings(max_examples=200, deadline=None)
@given(sites(fixed_loads=False, measured=False))
def test_a_paused_evse_could_not_have_got_its_minimum_or_queues_behind_one(site: Site) -> None:
    """Paused means: its minimum does not fit next to those admitted, or an EVSE ahead
    in the queue whose minimum does not fit yet holds the (node, phase) it needs."""
    result = allocate(site.topology, site.demands, now=0.0, settings=EXACT)
    t = result.topology
    paths = {evse.key: t.parent_chain(evse.node) for evse in t.evses}
    admitted = [
        (evse, a) for evse, a in zip(t.evses, result.evses, strict=True) if a.reason not in ("idle", "paused")
    ]

    def short_at(evse: Evse, phases: int) -> set[tuple[str, int]]:
        """The (node, phase) pairs where ``evse``'s minimum does not fit next to the admitted."""
        return {
            (node, ph)
            for node in paths[evse.key]
            for ph in grid_phases(evse, phases)
            if evse.min_a
            + sum(o.min_a for o, oa in admitted if node in paths[o.key] and ph in grid_phases(o, oa.phases))
            > capacity(result, node, ph) + 1e-9
        }

    paused = [(e, a) for e, a in zip(t.evses, result.evses, strict=True) if a.reason == "paused"]
    held = set().union(*(short_at(e, a.phases) for e, a in paused))
    for evse, a in paused:
        needs = {(node, ph) for node in paths[evse.key] for ph in grid_phases(evse, a.phases)}
        assert short_at(evse, a.phases) or needs & held, f"{evse.key} paused for no reason"


@settings(max_examples=100, deadline=None)
@given(sites(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_the_order_of_demands(site: Site, rng: random.Random) -> None:
    reference = allocate(site.topology, site.demands, now=0.0)
    shuffled = list(site.demands)
    rng.shuffle(shuffled)
    assert allocate(site.topology, shuffled, now=0.0).evses == reference.evses


@settings(max_examples=40, deadline=None)
@given(sites(fixed_loads=False, measured=False))
def test_every_evse_whose_minimum_fits_alone_gets_a_turn(site: Site) -> None:
    t = site.topology
    period = 900.0
    cfg = AllocationSettings(rotation_period_s=period)
    demands = [d for d in site.demands if d.ev_max_a is None or d.ev_max_a > 0]
    fits_alone = {
        d.key
        for d in demands
        if (e := t.evse(*d.key)) is not None
        and all(
            e.min_a <= t.available_a(node)[ph] + 1e-9
            for node in t.parent_chain(e.node)
            for ph in grid_phases(e, d.phases_in_use or e.phases)
        )
    }
    served: set[tuple[str, int]] = set()
    previous = None
    horizon = (len(demands) + 2) * period
    now = 0.0
    while now <= horizon:
        previous = allocate(t, demands, previous, now=now, settings=cfg)
        served.update(a.key for a in previous.evses if a.reason not in ("idle", "paused"))
        now += period / 3
    assert fits_alone <= served


@settings(max_examples=100, deadline=None)
@given(sites(fixed_loads=False))
def test_an_evse_never_gets_more_than_its_evs_maximum_current(site: Site) -> None:
    """The EV's maximum (NotifyEVChargingNeeds) caps its EVSE; 0 pauses it, and a maximum below the
    EVSE's minimum current gets that minimum (no station can be set lower and keep charging)."""
    result = allocate(site.topology, site.demands, now=0.0)
    ev_max = {d.key: d.ev_max_a for d in site.demands if d.ev_max_a is not None}
    for evse, a in zip(result.topology.evses, result.evses, strict=True):
        cap = ev_max.get(evse.key)
        if cap is not None:
            assert a.current_a <= (0.0 if cap <= 0 else max(cap, evse.min_a)) + TOL
