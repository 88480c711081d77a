"""Checks on an allocation: the safety rule D8 and Jain's fairness index.

Used by the service's tests, the property tests, the closed-loop test and the
benchmark. Pure: standard library only, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from csms.balancer.allocate import Allocation
from csms.balancer.topology import PHASES, own_constraints, push_up


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

    Linear in EVSEs times depth: the service can run it before sending anything.
    """
    ix = allocation.topology.compiled
    problems: list[str] = []
    load = [0.0] * (len(ix.nodes) * PHASES)
    fixed = [0.0] * (len(ix.nodes) * PHASES)
    for evse, node, a in zip(ix.evses, ix.evse_node, allocation.evses, strict=True):
        if not a.current_a:
            continue
        if a.reason == "fixed":
            target = fixed
        else:
            target = load
            if not evse.min_a - tolerance_a <= a.current_a <= evse.max_a + tolerance_a:
                problems.append(f"EVSE {evse.key}: {a.current_a} A outside [{evse.min_a}, {evse.max_a}]")
        for c in own_constraints(node, evse.grid_phases[: a.phases]):
            target[c] += a.current_a
    push_up(ix, 0, len(ix.nodes), (load, fixed))
    for node, nd in enumerate(ix.nodes):
        for ph in range(PHASES):
            k = node * PHASES + ph
            allowed = max(0.0, ix.available_a[k] - fixed[k])
            if load[k] > allowed + tolerance_a:
                problems.append(f"node {nd.id!r} L{ph + 1}: {load[k]:.6f} A allocated > {allowed:.6f} A")
    return problems
