"""Share node capacity among EVSEs: the pure, deterministic core of load balancing.

``allocate(topology, demands, previous, now=..., settings=...) -> Allocation``

1. **Bounds.** An EVSE with demand may get ``0`` or a current in ``[min_a, upper]``,
   ``upper = min(max_a, ev_max_a, measured draw + headroom_step_a)`` (the last only
   when it has drawn well below its allocation for ``settle_s``), never below ``min_a``.
2. **Admission** (minimum-current rule and rotation). In rotation order, an EVSE is
   admitted if its ``min_a`` still fits on every limited (node, phase) of its path;
   the others are paused. Order: started less than ``rotation_period_s`` ago (the
   most recently started first), then waiting (longest first), then running past
   their period (most recently started first); ties by priority, then topology order.
3. **Water-filling.** Weighted progressive filling: every admitted EVSE sits at
   ``min_a`` until the water level ``t`` reaches ``min_a / priority``, then rises as
   ``priority * t``; it stops at ``upper`` or when a (node, phase) on its path is
   full. This is the weighted max-min fair allocation with lower bounds.
4. **Rounding** down to ``resolution_a`` and **hysteresis**: a running EVSE keeps its
   previous current if the change is below ``hysteresis_a`` and keeping it is safe
   (a kept higher value must fit under every limit; kept lower values may leave at
   most ``hysteresis_a`` unused per node and phase).

Invariant D8: for every node and phase, the allocations under it never exceed
``limit - margin - base load - fixed loads`` (to within float precision, 1e-9 A).

Standard library only, no I/O; time comes in as ``now``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass

from csms.balancer.topology import (
    PHASES,
    EvseKey,
    Phase3,
    Topology,
    TopologyError,
    node_limit_a,
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
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0")
        if not self.headroom_step_a > 0:
            raise ValueError("headroom_step_a must be > 0")


DEFAULT_SETTINGS = AllocationSettings()


@dataclass(frozen=True, slots=True)
class Demand:
    """What one EVSE wants now; an EVSE without a Demand is idle (no EV).

    ``measured_a``: current per phase in the EVSE's own phase order, if metered.
    ``ev_max_a``: the EV's own limit (e.g. a tapering battery), if known.
    ``phases_in_use``: phases the EV actually draws on (a 1-phase car on a 3-phase
    EVSE loads only the first grid phase of its ``phase_connection``).
    ``plugged_at``: when it started waiting; orders waiting EVSEs when there is no
    ``previous`` allocation (after a restart). Defaults to ``now``.
    ``fixed_a``: the EVSE draws this whatever we send (profile rejected, station
    offline): it is counted as load, not balanced.
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


@dataclass(frozen=True, slots=True)
class EvseAllocation:
    """The current limit for one EVSE and the state rotation needs next time.

    ``current_a`` is per phase (0 = paused or idle); ``phases`` is how many phases it
    loads (``numberPhases`` of the charging profile). ``reason`` says what bounds it:
    ``idle``, ``paused`` (minimum does not fit), ``node:<id>`` (that node is full),
    ``evse_max``, ``ev_max``, ``draw`` (capped near measured draw), ``hysteresis``,
    ``fixed``.
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

    ``allocated_a`` includes fixed loads; ``measured_a`` is the node's base load plus
    the measured EV currents under it.
    """

    node_id: str
    limit_a: float | None
    available_a: Phase3
    allocated_a: Phase3
    headroom_a: Phase3
    measured_a: Phase3

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
        return self.evses[self.topology._evse_index[(station_id, evse_id)]]

    def node(self, node_id: str) -> NodeLoad:
        """The totals of one node; :class:`KeyError` if unknown."""
        return self.nodes[self.topology._node_index[node_id]]

    def evses_under(self, node_id: str) -> tuple[EvseAllocation, ...]:
        """The EVSEs in ``node_id``'s subtree."""
        start, end = self.topology._range[self.topology._node_index[node_id]]
        return self.evses[start:end]

    def changes_from(self, previous: Allocation | None) -> list[EvseAllocation]:
        """EVSEs whose ``current_a`` or ``phases`` differ from ``previous``.

        Decreases come first: send them (and see them accepted) before the
        increases, so the limits also hold while they are being applied.
        """
        old = _previous_by_index(self.topology, previous)
        changed = [
            (a.current_a - (0.0 if p is None else p.current_a), i, a)
            for i, (a, p) in enumerate(zip(self.evses, old, strict=True))
            if p is None or p.current_a != a.current_a or p.phases != a.phases
        ]
        changed.sort(key=lambda item: (item[0] > 0, item[1]))
        return [a for _, _, a in changed]


# -- the algorithm ----------------------------------------------------------

_WAITING, _ACTIVE, _FROZEN = 1, 2, 3


def allocate(
    topology: Topology,
    demands: Iterable[Demand],
    previous: Allocation | None = None,
    *,
    now: float,
    settings: AllocationSettings = DEFAULT_SETTINGS,
) -> Allocation:
    """Share every node's capacity among the EVSEs with demand (see module doc).

    Raises :class:`TopologyError` for a demand on an EVSE the topology lacks.
    """
    t = topology
    n = len(t._evses)
    nc = len(t._nodes) * PHASES
    demand_at: list[Demand | None] = [None] * n
    for dem in demands:
        i = t._evse_index.get((dem.station_id, dem.evse_id))
        if i is None:
            raise TopologyError(f"demand for EVSE {dem.key} which is not in the topology")
        demand_at[i] = dem
    prev_at = _previous_by_index(t, previous)

    cap = list(t._avail)  # what controllable EVSEs may use, per (node, phase)
    cons = list(t._evse_cons)  # limited (node, phase) indices per EVSE
    masks = list(t._evse_mask)
    nphases = [e.phases for e in t._evses]
    x = [0.0] * n
    lo = [0.0] * n
    hi = [0.0] * n
    reason = ["idle"] * n
    fixed: list[int] = []
    wanting: list[int] = []

    # 1. bounds
    for i, d in enumerate(demand_at):
        if d is None or not d.wants_energy or (d.ev_max_a is not None and d.ev_max_a <= 0):
            continue
        evse = t._evses[i]
        if d.phases_in_use is not None and d.phases_in_use != evse.phases:
            if not 1 <= d.phases_in_use <= evse.phases:
                raise TopologyError(f"demand {d.key}: phases_in_use must be 1..{evse.phases}")
            nphases[i] = d.phases_in_use
            masks[i] = _mask(evse.grid_phases[: d.phases_in_use])
            cons[i] = t.constraints(t._evse_path[i], masks[i])
        if d.fixed_a is not None:
            x[i] = max(0.0, d.fixed_a)
            reason[i] = "fixed"
            fixed.append(i)
            for c in cons[i]:
                cap[c] -= x[i]
            continue
        upper, why = evse.max_a, "evse_max"
        if d.ev_max_a is not None and d.ev_max_a < upper:
            upper, why = d.ev_max_a, "ev_max"
        p = prev_at[i]
        if (
            d.measured_a
            and p is not None
            and p.current_a > 0
            and now - p.changed_at >= settings.settle_s
        ):
            draw = max(d.measured_a)
            if (
                draw < p.current_a - settings.headroom_step_a
                and draw + settings.headroom_step_a < upper
            ):
                upper, why = draw + settings.headroom_step_a, "draw"
        lo[i] = evse.min_a
        hi[i] = max(upper, evse.min_a)
        reason[i] = why
        wanting.append(i)

    # 2. admission: minimum-current rule, in rotation order
    order = []
    for i in wanting:
        p = prev_at[i]
        want = demand_at[i]
        assert want is not None
        running = p is not None and p.current_a > 0 and p.charging_since is not None
        if running:
            assert p is not None and p.charging_since is not None
            cls = 0 if now - p.charging_since < settings.rotation_period_s else 2
            since = -p.charging_since
        else:
            cls = 1
            if p is not None and p.waiting_since is not None:
                since = p.waiting_since
            else:
                since = now if want.plugged_at is None else min(want.plugged_at, now)
        order.append((cls, since, -t._evses[i].priority, i))
    order.sort()
    rem = list(cap)
    status = [0] * n
    admitted: list[int] = []
    for *_, i in order:
        need = lo[i] - EPS
        cs = cons[i]
        if all(rem[c] >= need for c in cs):
            for c in cs:
                rem[c] -= lo[i]
            status[i] = _WAITING
            admitted.append(i)
        else:
            reason[i] = "paused"

    # 3. water-filling
    node_ids = [node.id for node in t._nodes]
    _water_fill(admitted, cons, masks, lo, hi, cap, t._range, node_ids, t, x, status, reason)

    # 4. rounding and hysteresis
    res = settings.resolution_a
    if res > 0:
        for i in admitted:
            q = round(math.floor(x[i] / res + EPS) * res, 9)
            x[i] = min(max(q, lo[i]), hi[i])
    if settings.hysteresis_a > 0 and previous is not None:
        _hysteresis(admitted, cons, lo, hi, cap, x, prev_at, reason, settings.hysteresis_a, nc)

    return _result(t, now, x, nphases, masks, reason, demand_at, prev_at)


def _water_fill(
    admitted: list[int],
    cons: list[tuple[int, ...]],
    masks: list[int],
    lo: list[float],
    hi: list[float],
    cap: list[float],
    ranges: tuple[tuple[int, int], ...],
    node_ids: list[str],
    t: Topology,
    x: list[float],
    status: list[int],
    reason: list[str],
) -> None:
    """Weighted progressive filling from the minimums; writes ``x`` and ``reason``.

    Each limited (node, phase) ``c`` has load ``fixed[c] + rate[c] * level``; its
    saturation level sits in a lazy heap (``version`` drops stale entries; freezing
    an EVSE only raises a saturation level, so such entries are re-checked on pop).
    """
    nc = len(cap)
    weight = [0.0] * len(x)
    fixed_load = [0.0] * nc
    rate = [0.0] * nc
    active_count = [0] * nc
    version = [0] * nc
    pushed = [0] * nc
    batch = 0
    activations: list[tuple[float, int]] = []
    uppers: list[tuple[float, int]] = []
    evses = t._evses
    for i in admitted:
        w = weight[i] = evses[i].priority
        for c in cons[i]:
            fixed_load[c] += lo[i]
        if hi[i] > lo[i]:
            activations.append((lo[i] / w, i))
            uppers.append((hi[i] / w, i))
        else:
            x[i] = lo[i]
            status[i] = _FROZEN
    activations.sort()
    uppers.sort()
    heap: list[tuple[float, int, int]] = []
    ai = ui = 0
    level = 0.0
    inf = math.inf

    def freeze(i: int, value: float) -> None:
        if status[i] == _ACTIVE:
            w = weight[i]
            for c in cons[i]:
                fixed_load[c] += value
                rate[c] -= w
                active_count[c] -= 1
                if not active_count[c]:
                    rate[c] = 0.0
        x[i] = value
        status[i] = _FROZEN

    while True:
        t_act = activations[ai][0] if ai < len(activations) else inf
        while ui < len(uppers) and status[uppers[ui][1]] == _FROZEN:
            ui += 1
        t_up = uppers[ui][0] if ui < len(uppers) else inf
        t_sat = inf
        while heap:
            stored, c, v = heap[0]
            if v != version[c] or not active_count[c]:
                heapq.heappop(heap)
                continue
            actual = (cap[c] - fixed_load[c]) / rate[c]
            if actual > stored + 1e-12 * (1.0 + abs(stored)):
                heapq.heapreplace(heap, (actual, c, v))
                continue
            t_sat = stored
            break
        if t_sat <= t_up and t_sat <= t_act:
            if t_sat == inf:
                return
            _, c, _ = heapq.heappop(heap)
            version[c] += 1
            level = max(level, t_sat)
            node, bit = divmod(c, PHASES)
            bit = 1 << bit
            why = "node:" + node_ids[node]
            start, end = ranges[node]
            for i in range(start, end):
                s = status[i]
                if s in (_ACTIVE, _WAITING) and masks[i] & bit:
                    freeze(i, weight[i] * level if s == _ACTIVE else lo[i])
                    reason[i] = why
        elif t_up <= t_act:
            i = uppers[ui][1]
            ui += 1
            level = max(level, t_up)
            freeze(i, hi[i])
        else:
            level = max(level, t_act)
            touched: list[int] = []
            while ai < len(activations) and activations[ai][0] <= t_act:
                i = activations[ai][1]
                ai += 1
                if status[i] != _WAITING:
                    continue
                status[i] = _ACTIVE
                w = weight[i]
                for c in cons[i]:
                    fixed_load[c] -= lo[i]
                    rate[c] += w
                    active_count[c] += 1
                    touched.append(c)
            batch += 1
            for c in touched:
                if pushed[c] != batch:
                    pushed[c] = batch
                    version[c] += 1
                    heapq.heappush(heap, ((cap[c] - fixed_load[c]) / rate[c], c, version[c]))


def _hysteresis(
    admitted: list[int],
    cons: list[tuple[int, ...]],
    lo: list[float],
    hi: list[float],
    cap: list[float],
    x: list[float],
    prev_at: list[EvseAllocation | None],
    reason: list[str],
    band: float,
    nc: int,
) -> None:
    """Keep running EVSEs at their previous current when the change is small and safe."""
    load = [0.0] * nc
    for i in admitted:
        for c in cons[i]:
            load[c] += x[i]
    unused = [0.0] * nc
    keep_higher: list[int] = []
    for i in admitted:
        p = prev_at[i]
        if p is None or p.current_a <= 0 or x[i] <= 0 or not lo[i] <= p.current_a <= hi[i]:
            continue
        step = x[i] - p.current_a
        if 0 < step < band:
            if all(unused[c] + step < band for c in cons[i]):
                for c in cons[i]:
                    unused[c] += step
                    load[c] -= step
                x[i] = p.current_a
                reason[i] = "hysteresis"
        elif -band < step < 0:
            keep_higher.append(i)
    for i in keep_higher:
        p = prev_at[i]
        assert p is not None
        extra = p.current_a - x[i]
        if all(load[c] + extra <= cap[c] + EPS for c in cons[i]):
            for c in cons[i]:
                load[c] += extra
            x[i] = p.current_a
            reason[i] = "hysteresis"


def _result(
    t: Topology,
    now: float,
    x: list[float],
    nphases: list[int],
    masks: list[int],
    reason: list[str],
    demand_at: list[Demand | None],
    prev_at: list[EvseAllocation | None],
) -> Allocation:
    nn = len(t._nodes)
    alloc = [0.0] * (nn * PHASES)
    measured = [0.0] * (nn * PHASES)
    out: list[EvseAllocation] = []
    for i, evse in enumerate(t._evses):
        cur = x[i]
        d = demand_at[i]
        p = prev_at[i]
        node = t._evse_node[i] * PHASES
        if cur:
            m = masks[i]
            for ph in range(PHASES):
                if m >> ph & 1:
                    alloc[node + ph] += cur
        if d is not None and d.measured_a:
            for ph, amps in zip(evse.grid_phases, d.measured_a, strict=False):
                measured[node + ph] += amps
        wants = reason[i] != "idle"
        if cur > 0:
            charging = p.charging_since if p is not None and p.current_a > 0 else None
            charging_since: float | None = now if charging is None else charging
            waiting_since: float | None = None
        else:
            charging_since = None
            waiting_since = None
            if wants:
                if p is not None and p.waiting_since is not None:
                    waiting_since = p.waiting_since
                else:
                    plugged = None if d is None else d.plugged_at
                    waiting_since = now if plugged is None else min(plugged, now)
        if (
            p is not None
            and p.current_a == cur
            and p.phases == nphases[i]
            and p.reason == reason[i]
            and p.charging_since == charging_since
            and p.waiting_since == waiting_since
            and p.station_id == evse.station_id
            and p.evse_id == evse.evse_id
        ):
            out.append(p)  # unchanged: reuse (allocation objects are immutable)
            continue
        out.append(
            EvseAllocation(
                station_id=evse.station_id,
                evse_id=evse.evse_id,
                current_a=cur,
                phases=nphases[i],
                reason=reason[i],
                changed_at=p.changed_at if p is not None and p.current_a == cur else now,
                charging_since=charging_since,
                waiting_since=waiting_since,
            )
        )
    for n in range(nn - 1, 0, -1):  # children come after parents: add each into its parent
        parent = t._parent[n]
        if parent >= 0:
            for ph in range(PHASES):
                alloc[parent * PHASES + ph] += alloc[n * PHASES + ph]
                measured[parent * PHASES + ph] += measured[n * PHASES + ph]
    nodes: list[NodeLoad] = []
    for n, nd in enumerate(t._nodes):
        k = n * PHASES
        avail = _p3(t._avail, k)
        allocated = _p3(alloc, k)
        base = nd.base_load_a
        nodes.append(
            NodeLoad(
                node_id=nd.id,
                limit_a=_limit(t, n),
                available_a=avail,
                allocated_a=allocated,
                headroom_a=(
                    avail[0] - allocated[0],
                    avail[1] - allocated[1],
                    avail[2] - allocated[2],
                ),
                measured_a=(
                    base[0] + measured[k],
                    base[1] + measured[k + 1],
                    base[2] + measured[k + 2],
                ),
            )
        )
    return Allocation(at=now, topology=t, evses=tuple(out), nodes=tuple(nodes))


def _limit(t: Topology, n: int) -> float | None:
    return node_limit_a(t._nodes[n], t.phase_voltage_v)


def _p3(values: list[float] | tuple[float, ...], k: int) -> Phase3:
    return (values[k], values[k + 1], values[k + 2])


def _mask(phases: Iterable[int]) -> int:
    mask = 0
    for p in phases:
        mask |= 1 << p
    return mask


def _previous_by_index(t: Topology, previous: Allocation | None) -> list[EvseAllocation | None]:
    """``previous``'s EVSE allocations lined up with ``t.evses`` (None where absent)."""
    if previous is None:
        return [None] * len(t._evses)
    if previous.topology._evse_index is t._evse_index:  # same EVSEs (e.g. after with_limit)
        return list(previous.evses)
    old = previous.topology._evse_index
    return [None if (j := old.get(e.key)) is None else previous.evses[j] for e in t._evses]


# -- helpers for tests, the service and the closed-loop check ----------------


def jain_index(values: Iterable[float]) -> float:
    """Jain's fairness index, (sum x)^2 / (n * sum x^2): 1 = equal, 1/n = one gets all.

    Empty or all-zero input counts as perfectly fair (1.0).
    """
    xs = list(values)
    square_sum = sum(v * v for v in xs)
    if not xs or square_sum == 0:
        return 1.0
    return sum(xs) ** 2 / (len(xs) * square_sum)


def check_allocation(allocation: Allocation, tolerance_a: float = 1e-6) -> list[str]:
    """Violations of D8 and of the min/max rule; empty when the allocation is safe.

    Cheap (linear); the service can run it before sending anything.
    """
    t = allocation.topology
    problems: list[str] = []
    load = [0.0] * (len(t._nodes) * PHASES)
    fixed = [0.0] * (len(t._nodes) * PHASES)
    for i, (evse, a) in enumerate(zip(t._evses, allocation.evses, strict=True)):
        target = fixed if a.reason == "fixed" else load
        if (
            a.reason != "fixed"
            and a.current_a
            and not (evse.min_a - tolerance_a <= a.current_a <= evse.max_a + tolerance_a)
        ):
            problems.append(
                f"EVSE {evse.key}: {a.current_a} A outside [{evse.min_a}, {evse.max_a}]"
            )
        if a.current_a:
            for ph in evse.grid_phases[: a.phases]:
                for n in t._evse_path[i]:
                    target[n * PHASES + ph] += a.current_a
    for n, node in enumerate(t._nodes):
        for ph in range(PHASES):
            k = n * PHASES + ph
            allowed = max(0.0, t._avail[k] - fixed[k])
            if load[k] > allowed + tolerance_a:
                problems.append(
                    f"node {node.id!r} L{ph + 1}: {load[k]:.6f} A allocated > {allowed:.6f} A"
                )
    return problems
