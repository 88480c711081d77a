"""Checks on an allocation: the safety rule and Jain's fairness index."""

from __future__ import annotations

import dataclasses

import pytest

from csms.balancer.allocate import AllocationSettings, Demand, allocate
from csms.balancer.checks import check_allocation, jain_index
from csms.balancer.topology import Evse, Node, Topology

EXACT = AllocationSettings(resolution_a=0.0, hysteresis_a=0.0)


def feeder(limit_a: float, *stations: str) -> Topology:
    return Topology([Node("F", limit_a=limit_a)], [Evse(s, 1, "F") for s in stations])


def test_a_safe_allocation_has_no_violations() -> None:
    t = feeder(20, "A", "B")
    result = allocate(t, [Demand("A", 1), Demand("B", 1)], now=0.0, settings=AllocationSettings())
    assert check_allocation(result) == []


def test_fixed_loads_count_against_the_limit_but_are_not_themselves_violations() -> None:
    t = feeder(20, "A", "B")
    result = allocate(t, [Demand("A", 1, fixed_a=16.0), Demand("B", 1)], now=0.0, settings=EXACT)
    assert result.evse("B", 1).reason == "paused" and check_allocation(result) == []
    forced = dataclasses.replace(result, evses=(result.evses[0], result.evses[1]._replace(current_a=6.0)))
    expected = [f"node 'F' L{p}: 6.000000 A allocated > 4.000000 A" for p in (1, 2, 3)]
    assert check_allocation(forced) == expected


def test_check_allocation_reports_limit_and_range_violations() -> None:
    t = feeder(20, "A", "B")
    good = allocate(t, [Demand("A", 1), Demand("B", 1)], now=0.0, settings=EXACT)
    bad = dataclasses.replace(
        good, evses=(good.evses[0]._replace(current_a=15.0), good.evses[1]._replace(current_a=3.0))
    )
    assert check_allocation(bad) == ["EVSE ('B', 1): 3.0 A outside [6.0, 32.0]"]
    over = dataclasses.replace(
        good, evses=(good.evses[0]._replace(current_a=15.0), good.evses[1]._replace(current_a=8.0))
    )
    assert check_allocation(over) == [
        "node 'F' L1: 23.000000 A allocated > 20.000000 A",
        "node 'F' L2: 23.000000 A allocated > 20.000000 A",
        "node 'F' L3: 23.000000 A allocated > 20.000000 A",
    ]


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], 1.0), ([0, 0], 1.0), ([5, 5, 5], 1.0), ([10, 0], 0.5), ([1, 0, 0, 0], 0.25), ([2, 1], 0.9)],
)
def test_jain_index(values: list[float], expected: float) -> None:
    assert jain_index(values) == pytest.approx(expected)
