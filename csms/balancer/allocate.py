"""Share node capacity among EVSEs: the pure, deterministic core of load balancing.

``allocate(topology, demands, previous, now=..., settings=...) -> Allocation``

1. **Bounds.** An EVSE with demand may get ``0`` or a current in ``[min_a, upper]``,
   ``upper = min(max_a, ev_max_a, measured draw + headroom_step_a)`` (the last only
   when it has drawn well below its allocation for ``settle_s``), never below ``min_a``.
2. **Admission** (minimum-current rule and rotation). Where the minimums of all
   EVSEs under a node do not fit, EVSEs are admitted in rotation order while their
   ``min_a`` still fits on every (node, phase) of their path; the others are paused.
   Order: started less than ``rotation_period_s`` ago (most recently started first),
   then waiting (longest first), then running past their period (most recently
   started first); ties by priority, then topology order. A waiting EVSE that does
   not fit yet holds its place: waiting EVSEs behind it on the same full
   (node, phase) are not started before it.
3. **Water-filling.** Weighted progressive filling: every admitted EVSE sits at
   ``min_a`` until the water level ``t`` reaches ``min_a / priority``, then rises as
   ``priority * t``; it stops at ``upper`` or when a (node, phase) on its path is
   full. This is the weighted max-min fair allocation with lower bounds.
4. **Rounding** down to ``resolution_a`` and **hysteresis**: a running EVSE keeps its
   previous current if the change is below ``hysteresis_a`` and keeping it is safe
   (a kept higher value must fit under every limit; kept lower values leave at most
   ``hysteresis_a`` unused per node and phase).

Invariant D8: for every node and phase, the allocations under it never exceed
``limit - margin - base load - fixed loads`` (up to float rounding, < 1e-6 A).

The algorithm reads the topology only through its public compiled index
(:class:`~csms.balancer.topology.CompiledTopology`); :mod:`csms.balancer.checks`
verifies a result. Standard library only, no I/O; time comes in as ``now``. The
per-EVSE records are NamedTuples rather than frozen dataclasses because there is
one per EVSE per tick and the budget is 50 ms for 10,000 EVSEs (building a frozen
dataclass costs 4x a NamedTuple on Python 3.11).
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from operator import add
from typing import NamedTuple

from csms.balancer.topology import (
    PHASES,
    CompiledTopology,
    EvseKey,
    Phase3,
    Topology,
    TopologyError,
    own_constraints,
    phase_mask,
    push_up,
)

EPS = 1e-9
"""Tolerance (amperes) of capacity comparisons."""


@dataclass(frozen=True, slots=True)
class AllocationSettings:
    """Tuning of :func:`allocate`; field names match the ``[balancer]`` config keys."""

    resolution_a: float = 0.1
    """Allocations are rounded down to a multiple of this (0 = no rounding)."""
    hysteresis_a: float = 1.0
    """A running EVSE's change smaller than this is skipped when that is safe."""
    rotation_period_s: float = 900.0
    """A started EVSE keeps its turn this long before it yields to waiting ones."""
    headroom_step_a: float = 2.0
    """An EVSE drawing less than allocation - step is capped at draw + step."""
    settle_s: float = 30.0
    """Measured draw is trusted only this long after the allocation last changed."""

    def __post_init__(self) -> None:
        for name in ("resolution_a", "hysteresis_a", "rotation_period_s", "settle_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not (math.isfinite(self.headroom_step_a) and self.headroom_step_a > 0):
            raise ValueError(f"headroom_step_a must be > 0, got {self.headroom_step_a}")


DEFAULT_SETTINGS = AllocationSettings()


class Demand(NamedTuple):
    """What one EVSE wants now; an EVSE without a Demand is idle (no EV).

    ``measured_a``: the current it draws per phase (in the EVSE's own phase order),
    if metered.
    ``ev_max_a``: the EV's own limit (e.g. a tapering battery), if known; 0 = wants
    nothing. ``phases_in_use``: phases the EV draws on (a 1-phase car on a 3-phase
    EVSE loads only the first grid phase of the EVSE's ``phase_connection``).
    ``plugged_at``: when it started waiting; orders waiting EVSEs when there is no
    ``previous`` allocation (after a restart); default ``now``. ``fixed_a``: the EVSE
    draws this whatever we send (profile rejected, station unreachable): counted as
    load on its phases, not balanced.
    """

    station_id: str
    evse_id: int
    wants_energy: bool = True
    measured_a: tuple[float, ...] | None = None
    ev_max_a: float | None = None
    phases_in_use: int | None = None
    plugged_at: float | None = None
    fixed_a: float | None = None

    @property
    def key(self) -> EvseKey:
        return (self.station_id, self.evse_id)


class EvseAllocation(NamedTuple):
    """The current limit for one EVSE, and the state rotation needs next time.

    ``current_a`` is per phase (0 = paused or idle); ``phases`` is how many phases it
    loads (``numberPhases`` of the charging profile). ``reason`` says what bounds it:
    ``idle``, ``paused`` (its minimum does not fit), ``node:<id>`` (that node is
    full), ``evse_max``, ``ev_max``, ``draw`` (capped near its measured draw),
    ``hysteresis`` (kept at its previous value), ``fixed``.
    """

    station_id: str
    evse_id: int
    current_a: float
    phases: int
    reason: str
    changed_at: float
    charging_since: float | None = None
    waiting_since: float | None = None

    @property
    def key(self) -> EvseKey:
        return (self.station_id, self.evse_id)


@dataclass(frozen=True, slots=True)
class NodeLoad:
    """Per-phase totals of one node; ``inf`` stands for unlimited.

    ``available_a`` is limit - margin - base load; ``allocated_a`` is the sum of the
    allocations under the node, fixed loads included; ``measured_a`` is the base load
    plus the measured currents of the EVSEs under it.
    """

    node_id: str
    limit_a: float | None
    available_a: Phase3
    allocated_a: Phase3
    headroom_a: Phase3
    measured_a: Phase3 = (0.0, 0.0, 0.0)

    @property
    def utilisation(self) -> float:
        """Allocated / available on the fullest phase (0 if unlimited)."""
        ratios = [
            (1.0 if alloc > EPS else 0.0) if avail <= 0 else alloc / avail
            for alloc, avail in zip(self.allocated_a, self.available_a, strict=True)
            if avail != math.inf
        ]
        return max(ratios, default=0.0)

    @property
    def overloaded(self) -> bool:
        """Fixed loads alone exceed what is available."""
        return min(self.headroom_a) < -1e-6


@dataclass(frozen=True, slots=True)
class Allocation:
    """Result of :func:`allocate`; pass it back as ``previous`` next time."""

    at: float
    topology: Topology
    evses: tuple[EvseAllocation, ...]
    """In ``topology.evses`` order."""
    nodes: tuple[NodeLoad, ...]
    """In ``topology.nodes`` order."""

    def evse(self, station_id: str, evse_id: int) -> EvseAllocation:
        """The allocation of one EVSE; :class:`KeyError` if not in the topology."""
        return self.evses[self.topology.compiled.evse_index[(station_id, evse_id)]]

    def node(self, node_id: str) -> NodeLoad:
        """The totals of one node; :class:`KeyError` if unknown."""
        return self.nodes[self.topology.compiled.node_index[node_id]]

    def evses_under(self, node_id: str) -> tuple[EvseAllocation, ...]:
        """The EVSEs in ``node_id``'s subtree."""
        ix = self.topology.compiled
        start, end = ix.subtree_evses[ix.node_index[node_id]]
        return self.evses[start:end]

    def changes_from(self, previous: Allocation | None) -> list[EvseAllocation]:
        """EVSEs whose ``current_a`` or ``phases`` differ from ``previous``.

        Decreases come first: send them (and see them accepted) before the
        increases, so that the limits also hold while the changes are applied.
        """
        old = _previous_by_index(self.topology.compiled, previous)
        down: list[EvseAllocation] = []
        up: list[EvseAllocation] = []
        for a, p in zip(self.evses, old, strict=True):
            if p is None or p.current_a != a.current_a or p.phases != a.phases:
                if p is not None and a.current_a * a.phases < p.current_a * p.phases:
                    down.append(a)
                else:
                    up.append(a)
        return down + up


# -- the algorithm ----------------------------------------------------------
#
# Arrays are indexed by EVSE position in ``topology.evses`` (``i``) or by
# constraint ``c = node * 3 + phase`` (see CompiledTopology). Amounts that change
# for many EVSEs at once are added at each EVSE's own node and pushed up the tree
# in one pass (``push_up``), so the cost stays about linear in EVSEs plus nodes.

_WAITING, _ACTIVE, _FROZEN = 1, 2, 3


@dataclass(frozen=True, slots=True)
class EvseArrays:
    """The per-EVSE working arrays of one allocation, indexed like ``CompiledTopology.evses``.

    The lists are updated in place as the steps run. ``own``, ``cons``, ``masks`` and
    ``phases`` start as the compiled ones and change for an EV on fewer phases.
    """

    own: list[tuple[int, ...]]
    """Constraints of the EVSE's own node that it loads."""
    cons: list[tuple[int, ...]]
    """Limited constraints on its path that it loads."""
    masks: list[int]
    """Grid phases it loads, as a bit mask."""
    phases: list[int]
    """Number of phases it loads."""
    lo: list[float]
    """Lower bound (its minimum when it has demand, else 0)."""
    hi: list[float]
    """Upper bound."""
    x: list[float]
    """The allocation being built."""
    reason: list[str]
    """What bounds it (see :class:`EvseAllocation`)."""

    @classmethod
    def start(cls, index: CompiledTopology) -> EvseArrays:
        """Everyone idle at 0, on the EVSEs' own phases."""
        n = len(index.evses)
        return cls(
            own=list(index.evse_own),
            cons=list(index.evse_constraints),
            masks=list(index.evse_mask),
            phases=list(index.evse_phases),
            lo=[0.0] * n,
            hi=[0.0] * n,
            x=[0.0] * n,
            reason=["idle"] * n,
        )


@dataclass(frozen=True, slots=True)
class FillProblem:
    """The input of water-filling: admitted EVSEs rise from ``lo`` to at most ``hi``
    while every constraint's total stays within ``cap``."""

    index: CompiledTopology
    evses: EvseArrays
    admitted: list[int]
    """EVSEs taking part, each starting at its minimum."""
    cap: list[float]
    """Per constraint: what may be allocated (available minus fixed loads)."""
    floor_sum: list[float]
    """Per constraint: the admitted minimums under it (taken over and updated)."""


def allocate(
    topology: Topology,
    demands: Iterable[Demand],
    previous: Allocation | None = None,
    *,
    now: float,
    settings: AllocationSettings = DEFAULT_SETTINGS,
) -> Allocation:
    """Share every node's capacity among the EVSEs with demand (see module doc).

    Raises :class:`TopologyError` for a demand on an EVSE the topology lacks, or
    two demands for one EVSE.
    """
    ix = topology.compiled
    n = len(ix.evses)
    n_nodes = len(ix.nodes)
    nc = n_nodes * PHASES
    prev_at = _previous_by_index(ix, previous)
    ev = EvseArrays.start(ix)
    own, x, lo, hi, reason, nphases = ev.own, ev.x, ev.lo, ev.hi, ev.reason, ev.phases
    demand_at: list[Demand | None] = [None] * n
    lo_sum = [0.0] * nc  # per constraint, once push_up has run
    fixed_sum = [0.0] * nc
    measured = [0.0] * nc
    wanting: list[int] = []

    # 1. bounds
    get = ix.evse_index.get
    evse_min, evse_max, ix_own = ix.evse_min_a, ix.evse_max_a, ix.evse_own
    step, settle = settings.headroom_step_a, settings.settle_s
    for dem in demands:
        i = get((dem[0], dem[1]), -1)
        if i < 0 or demand_at[i] is not None:
            what = "is not in the topology" if i < 0 else "has two demands"
            raise TopologyError(f"EVSE {dem.key} {what}")
        demand_at[i] = dem
    any_fixed = any_measured = False
    for i, d in enumerate(demand_at):  # in topology order, whatever the demands' order
        if d is None:
            continue
        _, _, wants, metered, ev_max, in_use, _, fixed_a = d
        draw = None
        if metered:
            any_measured = True
            oc = ix_own[i]
            if len(oc) == 3 and len(metered) == 3:
                measured[oc[0]] += metered[0]
                measured[oc[1]] += metered[1]
                measured[oc[2]] += metered[2]
            else:
                for c, amps in zip(oc, metered, strict=False):
                    measured[c] += amps
            draw = max(metered)
        if not wants:
            continue
        if in_use is not None and in_use != nphases[i]:
            _use_phases(ix, ev, i, in_use)
        if fixed_a is not None:
            any_fixed = True
            x[i] = fixed = max(0.0, fixed_a)
            reason[i] = "fixed"
            for c in own[i]:
                fixed_sum[c] += fixed
            continue
        upper = evse_max[i]
        why = "evse_max"
        if ev_max is not None:
            if ev_max <= 0:
                continue
            if ev_max < upper:
                upper = ev_max
                why = "ev_max"
        if draw is not None:
            p = prev_at[i]
            if (
                p is not None
                and draw < p.current_a - step
                and draw + step < upper
                and now - p.changed_at >= settle
            ):
                upper = draw + step
                why = "draw"
        x[i] = lo[i] = low = evse_min[i]  # water-filling starts everyone at the minimum
        hi[i] = upper if upper > low else low
        reason[i] = why
        for c in own[i]:
            lo_sum[c] += low
        wanting.append(i)
    sums = (lo_sum,) + ((fixed_sum,) if any_fixed else ()) + ((measured,) if any_measured else ())
    push_up(ix, 0, n_nodes, sums)
    avail = ix.available_a
    cap = [a - f for a, f in zip(avail, fixed_sum, strict=True)] if any_fixed else list(avail)

    # 2. admission: only EVSEs under a (node, phase) whose minimums don't all fit compete
    short = [0] * n_nodes  # phases oversubscribed at the node or above, as a mask
    for node, parent in enumerate(ix.parent):
        mask = short[parent] if parent >= 0 else 0
        k = node * PHASES
        for ph in range(PHASES):
            if lo_sum[k + ph] > cap[k + ph] + EPS:
                mask |= 1 << ph
        short[node] = mask
    evse_node, masks = ix.evse_node, ev.masks
    contended = [i for i in wanting if short[evse_node[i]] & masks[i]]
    if contended:
        admitted = [i for i in wanting if not short[evse_node[i]] & masks[i]]
        order, klass = _rotation_order(ix, contended, prev_at, demand_at, now, settings)
        admitted += _admit(ix, ev, order, klass, cap, lo_sum)
    else:
        admitted = wanting

    # 3. water-filling
    _water_fill(FillProblem(ix, ev, admitted, cap, lo_sum))

    # 4. rounding down, and hysteresis
    alloc = [0.0] * nc  # allocated per constraint, fixed loads included
    per_amp = 1.0 / settings.resolution_a if settings.resolution_a > 0 else 0.0
    floor = math.floor
    for i in admitted:
        v = x[i]
        if per_amp:
            q = floor(v * per_amp + EPS) / per_amp
            x[i] = v = hi[i] if q > hi[i] else lo[i] if q < lo[i] else q
        for c in own[i]:
            alloc[c] += v
    if any_fixed:
        for i, r in enumerate(reason):
            if r == "fixed":
                for c in own[i]:
                    alloc[c] += x[i]
    push_up(ix, 0, n_nodes, (alloc,))
    if settings.hysteresis_a > 0 and previous is not None:
        _hysteresis(ix, ev, admitted, alloc, prev_at, settings.hysteresis_a)

    return _result(topology, now, ev, demand_at, prev_at, alloc, measured)


def _use_phases(ix: CompiledTopology, ev: EvseArrays, i: int, in_use: int) -> None:
    """The EV draws on fewer phases than the EVSE has: the first ones of its connection."""
    evse = ix.evses[i]
    if not 1 <= in_use <= evse.phases:
        raise TopologyError(f"EVSE {evse.key}: phases_in_use must be 1..{evse.phases}")
    phases = evse.grid_phases[:in_use]
    ev.phases[i] = in_use
    ev.masks[i] = mask = phase_mask(phases)
    ev.own[i] = own_constraints(ix.evse_node[i], phases)
    ev.cons[i] = ix.constraints(ix.evse_path[i], mask)


def _rotation_order(
    ix: CompiledTopology,
    contended: list[int],
    prev_at: list[EvseAllocation | None],
    demand_at: list[Demand | None],
    now: float,
    settings: AllocationSettings,
) -> tuple[list[int], dict[int, int]]:
    """``contended`` (in topology order) sorted into admission order, and each one's class.

    Keys, most significant first: class (0: started less than ``rotation_period_s``
    ago; 1: waiting; 2: running past its period); time (classes 0 and 2: most
    recently started first, so a cut pauses those that have charged longest;
    class 1: waiting longest first); higher priority; topology order. Stable sorts,
    least significant key first.
    """
    klass: dict[int, int] = {}
    since: dict[int, float] = {}
    period = settings.rotation_period_s
    for i in contended:
        p = prev_at[i]
        if p is not None and p.current_a > 0 and p.charging_since is not None:
            klass[i] = 0 if now - p.charging_since < period else 2
            since[i] = -p.charging_since
        else:
            klass[i] = 1
            if p is not None and p.waiting_since is not None:
                since[i] = p.waiting_since
            else:
                d = demand_at[i]
                plugged = None if d is None else d.plugged_at
                since[i] = plugged if plugged is not None and plugged <= now else now
    order = sorted(contended, key=ix.evse_priority.__getitem__, reverse=True)  # stays stable
    order.sort(key=since.__getitem__)
    order.sort(key=klass.__getitem__)
    return order, klass


def _admit(
    ix: CompiledTopology,
    ev: EvseArrays,
    order: list[int],
    klass: dict[int, int],
    cap: list[float],
    lo_sum: list[float],
) -> list[int]:
    """Admit EVSEs greedily in ``order`` while their minimum fits; pause the rest.

    Only oversubscribed constraints can refuse a minimum, so only those are
    checked. A waiting EVSE that does not fit (but would fit alone) holds back the
    waiting EVSEs behind it on the constraints where it fell short, so smaller ones
    cannot overtake it for ever; running ones past their period are not held back.
    Paused EVSEs get 0 and leave ``lo_sum``.
    """
    lo, cons, masks, x, reason = ev.lo, ev.cons, ev.masks, ev.x, ev.reason
    evse_node = ix.evse_node
    over = [s > a + EPS for s, a in zip(lo_sum, cap, strict=True)]
    checks: dict[int, tuple[int, ...]] = {}  # by (node, phase mask)
    rem = list(cap)
    held: set[int] = set()  # constraints reserved for a waiting EVSE ahead in the queue
    admitted: list[int] = []
    for i in order:
        key = evse_node[i] * 8 + masks[i]
        cs = checks.get(key)
        if cs is None:
            cs = checks[key] = tuple(c for c in cons[i] if over[c])
        need = lo[i] - EPS
        waiting = klass[i] == 1
        if waiting and held and not held.isdisjoint(cs):
            short: list[int] | None = None  # held back: paused, holds nothing itself
        else:
            short = [c for c in cs if rem[c] < need]
            if not short:
                for c in cs:
                    rem[c] -= lo[i]
                admitted.append(i)
                continue
        reason[i] = "paused"
        x[i] = 0.0
        for c in cons[i]:
            lo_sum[c] -= lo[i]
        if waiting and short and all(cap[c] >= need for c in cs):
            held.update(short)
    return admitted


@dataclass(frozen=True, slots=True)
class _Levels:
    """Water-filling state per constraint: load ``fixed + rate * t`` at level ``t``;
    ``d_fixed`` / ``d_rate`` are per-node deltas, zero between uses."""

    fixed: list[float]
    rate: list[float]
    d_fixed: list[float]
    d_rate: list[float]


def _water_fill(problem: FillProblem) -> None:
    """Weighted progressive filling from the minimums; writes ``x`` (which holds the
    minimums on entry) and ``reason`` of ``problem.evses``.

    At water level ``t`` an active EVSE has ``priority * t``; a waiting one still sits
    at ``min_a``. A constraint's load is ``fixed[c] + rate[c] * t``. Its saturation
    level is kept in a lazy heap: freezing an EVSE only raises that level, so a
    popped entry is re-checked and re-pushed if stale; activations push anew and
    ``version`` drops the superseded entries. Events that touch many EVSEs at once
    add at the EVSEs' own nodes and push the sums up the tree in one pass.
    """
    ix, ev, cap = problem.index, problem.evses, problem.cap
    own, cons, masks, lo, hi, x, reason = ev.own, ev.cons, ev.masks, ev.lo, ev.hi, ev.x, ev.reason
    nc = len(cap)
    n = len(x)
    weight = ix.evse_priority
    status = [0] * n
    levels = _Levels(problem.floor_sum, [0.0] * nc, [0.0] * nc, [0.0] * nc)
    fixed, rate, d_fixed, d_rate = levels.fixed, levels.rate, levels.d_fixed, levels.d_rate
    version = [0] * nc
    start_at = [0.0] * n
    stop_at = [0.0] * n
    limited = [c for c in range(nc) if cap[c] != math.inf]
    # nxt[i] <= the next EVSE at or after i that may still move (a path-halved skip
    # list), so scans under a full node step over frozen and idle EVSEs.
    nxt = [*range(1, n + 1), n]
    movers = [i for i in problem.admitted if hi[i] > lo[i]]
    for i in movers:
        status[i] = _WAITING
        nxt[i] = i
        w = weight[i]
        start_at[i] = lo[i] / w
        stop_at[i] = hi[i] / w
    starts = sorted(movers, key=start_at.__getitem__)
    stops = sorted(movers, key=stop_at.__getitem__)
    n_starts, n_stops = len(starts), len(stops)
    heap: list[tuple[float, int, int]] = []
    node_ids = [node.id for node in ix.nodes]
    n_nodes = len(node_ids)
    subtree_evses, subtree_end = ix.subtree_evses, ix.subtree_end
    inf = math.inf
    si = ui = 0
    level = 0.0
    while True:
        t_start = start_at[starts[si]] if si < n_starts else inf
        while ui < n_stops and status[stops[ui]] == _FROZEN:
            ui += 1
        t_stop = stop_at[stops[ui]] if ui < n_stops else inf
        t_sat = inf
        while heap:
            stored, c, v = heap[0]
            r = rate[c]
            if v != version[c] or r <= 1e-9:
                heapq.heappop(heap)
                continue
            actual = (cap[c] - fixed[c]) / r
            if actual > stored + 1e-12 * (1.0 + abs(stored)):
                heapq.heapreplace(heap, (actual, c, v))
                continue
            t_sat = stored
            break

        if t_sat <= t_stop and t_sat <= t_start:
            if t_sat == inf:
                return
            # a (node, phase) is full: freeze every EVSE under it on that phase
            _, c, _ = heapq.heappop(heap)
            version[c] += 1
            level = max(level, t_sat)
            node, ph = divmod(c, PHASES)
            bit = 1 << ph
            why = "node:" + node_ids[node]
            first, end = subtree_evses[node]
            hit: list[int] = []
            i = first
            while True:
                while nxt[i] != i:  # skip frozen EVSEs, halving the path
                    nxt[i] = nxt[nxt[i]]
                    i = nxt[i]
                if i >= end:
                    break
                if masks[i] & bit:
                    if status[i] == _ACTIVE:
                        value = weight[i] * level
                        x[i] = hi[i] if value > hi[i] else value
                        hit.append(i)
                    status[i] = _FROZEN  # a waiting one stays at its minimum
                    reason[i] = why
                    nxt[i] = i + 1
                i += 1
            sub_nodes = subtree_end[node] - node
            _freeze(ix, ev, levels, hit, node, sub_nodes, 2 * len(hit) > sub_nodes + 6)
        elif t_stop <= t_start:
            # EVSEs reach their upper bound (often many at once: 16 A, 32 A ...)
            level = max(level, t_stop)
            end = bisect_right(stops, t_stop, ui, n_stops, key=stop_at.__getitem__)
            batch = [i for i in stops[ui:end] if status[i] == _ACTIVE]
            ui = end
            for i in batch:
                x[i] = hi[i]
                status[i] = _FROZEN
                nxt[i] = i + 1
            _freeze(ix, ev, levels, batch, 0, n_nodes, len(batch) > n_nodes)
        else:
            # EVSEs whose minimum the water level reaches start to rise
            level = max(level, t_start)
            end = bisect_right(starts, t_start, si, n_starts, key=start_at.__getitem__)
            batch = [i for i in starts[si:end] if status[i] == _WAITING]
            si = end
            for i in batch:
                status[i] = _ACTIVE
            if len(batch) > 2 * n_nodes:  # many at once: one pass over the tree
                for i in batch:
                    w = weight[i]
                    for k in own[i]:
                        d_rate[k] += w
                # every EVSE of the batch has min_a == priority * level
                d_fixed[:] = [-level * r for r in d_rate]
                _apply(ix, levels, 0, n_nodes)
                # a new heap of every limited constraint with rising EVSEs under it
                heap = [((cap[c] - fixed[c]) / rate[c], c, version[c]) for c in limited if rate[c] > 1e-9]
                heapq.heapify(heap)
            else:
                touched: set[int] = set()
                for i in batch:
                    w = weight[i]
                    low = lo[i]
                    for k in cons[i]:
                        fixed[k] -= low
                        rate[k] += w
                    touched.update(cons[i])
                for c in sorted(touched):
                    if rate[c] > 1e-9:
                        version[c] += 1
                        heapq.heappush(heap, ((cap[c] - fixed[c]) / rate[c], c, version[c]))


def _freeze(
    ix: CompiledTopology,
    ev: EvseArrays,
    levels: _Levels,
    batch: list[int],
    node: int,
    sub_nodes: int,
    many: bool,
) -> None:
    """Account for rising EVSEs of ``batch`` (under ``node``) stopping at ``x``.

    Few: update every constraint on their paths. Many: add at their own nodes, then
    push up the subtree of ``node`` (``sub_nodes`` nodes) and its ancestors once.
    """
    x, weight = ev.x, ix.evse_priority
    if many:
        own, d_fixed, d_rate = ev.own, levels.d_fixed, levels.d_rate
        for i in batch:
            value = x[i]
            w = weight[i]
            for k in own[i]:
                d_fixed[k] += value
                d_rate[k] -= w
        _apply(ix, levels, node, node + sub_nodes)
    else:
        cons, fixed, rate = ev.cons, levels.fixed, levels.rate
        for i in batch:
            value = x[i]
            w = weight[i]
            for k in cons[i]:
                fixed[k] += value
                rate[k] -= w


def _apply(ix: CompiledTopology, levels: _Levels, first: int, end: int) -> None:
    """Add the per-node deltas of nodes ``first..end-1`` (a subtree, or all nodes) to
    every constraint at or above them, and clear the deltas."""
    fixed, rate, d_fixed, d_rate = levels.fixed, levels.rate, levels.d_fixed, levels.d_rate
    push_up(ix, first, end, (d_fixed, d_rate))
    a, b = first * PHASES, end * PHASES
    zeros = [0.0] * (b - a)
    fixed[a:b] = map(add, fixed[a:b], d_fixed[a:b])
    rate[a:b] = map(add, rate[a:b], d_rate[a:b])
    d_fixed[a:b] = zeros
    d_rate[a:b] = zeros
    parent = ix.parent
    up = parent[first] if first < end else -1
    while up >= 0:
        for c in range(up * PHASES, up * PHASES + PHASES):
            fixed[c] += d_fixed[c]
            rate[c] += d_rate[c]
            d_fixed[c] = d_rate[c] = 0.0
        up = parent[up]


def _hysteresis(
    ix: CompiledTopology,
    ev: EvseArrays,
    admitted: list[int],
    alloc: list[float],
    prev_at: list[EvseAllocation | None],
    band: float,
) -> None:
    """Keep running EVSEs at their previous current when the change is less than
    ``band`` and safe.

    ``alloc`` (per constraint, fixed loads included) is kept up to date.
    """
    own, cons, lo, hi, x, reason = ev.own, ev.cons, ev.lo, ev.hi, ev.x, ev.reason
    lower: list[tuple[int, float, float]] = []
    higher: list[tuple[int, float, float]] = []
    for i in admitted:
        p = prev_at[i]
        if p is None:
            continue
        old = p.current_a
        diff = x[i] - old
        if diff and old and -band < diff < band and lo[i] <= old <= hi[i]:
            if diff > 0:
                lower.append((i, old, diff))
            else:
                higher.append((i, old, -diff))
    if not lower and not higher:
        return
    lower.sort()  # topology order: who keeps a lower value must not depend on admission
    higher.sort()
    avail = ix.available_a
    unused = [0.0] * len(alloc)
    kept: list[tuple[int, float]] = []
    for i, old, diff in lower:
        for c in cons[i]:
            if unused[c] + diff >= band:
                break
        else:
            for c in cons[i]:
                unused[c] += diff
                alloc[c] -= diff
            kept.append((i, -diff))
            x[i] = old
            reason[i] = "hysteresis"
    for i, old, extra in higher:
        for c in cons[i]:
            if alloc[c] + extra > avail[c] + EPS:
                break
        else:
            for c in cons[i]:
                alloc[c] += extra
            kept.append((i, extra))
            x[i] = old
            reason[i] = "hysteresis"
    # the unlimited nodes on the paths, for the reported totals
    for i, delta in kept:
        for node in ix.evse_path[i]:
            for c in own_constraints(node, (k % PHASES for k in own[i])):
                if avail[c] == math.inf:
                    alloc[c] += delta


def _result(
    topology: Topology,
    now: float,
    ev: EvseArrays,
    demand_at: list[Demand | None],
    prev_at: list[EvseAllocation | None],
    alloc: list[float],
    measured: list[float],
) -> Allocation:
    ix = topology.compiled
    nphases, reason = ev.phases, ev.reason
    out: list[EvseAllocation] = []
    evses = ix.evses
    for i, cur in enumerate(ev.x):
        p = prev_at[i]
        why = reason[i]
        if p is not None and p.current_a == cur and p.reason == why and p.phases == nphases[i]:
            out.append(p)  # unchanged; its charging_since / waiting_since carry over
            continue
        charging_since = waiting_since = None
        if cur:
            if p is not None and p.current_a:
                charging_since = p.charging_since
            if charging_since is None:
                charging_since = now
        elif why != "idle":
            if p is not None and p.current_a:  # was charging: to the back of the queue
                waiting_since = now
            elif p is not None and p.waiting_since is not None:
                waiting_since = p.waiting_since
            else:
                d = demand_at[i]
                plugged = None if d is None else d.plugged_at
                waiting_since = plugged if plugged is not None and plugged <= now else now
        e = evses[i]
        out.append(
            EvseAllocation(
                e.station_id,
                e.evse_id,
                cur,
                nphases[i],
                why,
                p.changed_at if p is not None and p.current_a == cur else now,
                charging_since,
                waiting_since,
            )
        )
    nodes: list[NodeLoad] = []
    avail = ix.available_a
    for node, nd in enumerate(ix.nodes):
        k = node * PHASES
        a0, a1, a2 = avail[k], avail[k + 1], avail[k + 2]
        x0, x1, x2 = alloc[k], alloc[k + 1], alloc[k + 2]
        b = nd.base_load_a
        nodes.append(
            NodeLoad(
                nd.id,
                ix.limit_a[node],
                (a0, a1, a2),
                (x0, x1, x2),
                (a0 - x0, a1 - x1, a2 - x2),
                (b[0] + measured[k], b[1] + measured[k + 1], b[2] + measured[k + 2]),
            )
        )
    return Allocation(at=now, topology=topology, evses=tuple(out), nodes=tuple(nodes))


def _previous_by_index(ix: CompiledTopology, previous: Allocation | None) -> list[EvseAllocation | None]:
    """``previous``'s EVSE allocations lined up with ``ix.evses`` (None where absent)."""
    if previous is None:
        return [None] * len(ix.evses)
    old = previous.topology.compiled.evse_index
    if old is ix.evse_index:  # same EVSEs (e.g. after with_limit)
        return list(previous.evses)
    return [None if (j := old.get(e.key)) is None else previous.evses[j] for e in ix.evses]
