"""Allocation: table-driven cases for sharing, phases, minimums, rotation, headroom, hysteresis."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from csms.balancer.allocate import Allocation, AllocationSettings, Demand, allocate
from csms.balancer.checks import check_allocation
from csms.balancer.topology import Evse, Node, Topology, TopologyError

EXACT = AllocationSettings(resolution_a=0.0, hysteresis_a=0.0)
"""No rounding, no hysteresis: the plain max-min fair allocation."""


def feeder(limit_a: float | None, *evses: Evse, **node: Any) -> Topology:
    """One feeder ``F`` with ``evses`` under it."""
    return Topology([Node("F", limit_a=limit_a, **node)], evses)


def ev(station: str, node: str = "F", **kw: Any) -> Evse:
    return Evse(station, 1, node, **kw)


def want(station: str, **kw: Any) -> Demand:
    return Demand(station, 1, **kw)


def amps(allocation: Allocation) -> dict[str, float]:
    return {a.station_id: round(a.current_a, 6) for a in allocation.evses}


def reasons(allocation: Allocation) -> dict[str, str]:
    return {a.station_id: a.reason for a in allocation.evses}


def run(t: Topology, demands: list[Demand], **kw: Any) -> Allocation:
    kw.setdefault("now", 0.0)
    kw.setdefault("settings", EXACT)
    result = allocate(t, demands, **kw)
    assert check_allocation(result) == []
    return result


# -- sharing one feeder ---------------------------------------------------------


@pytest.mark.parametrize(
    ("limit_a", "evses", "demands", "expected"),
    [
        pytest.param(
            30,
            [ev("A"), ev("B"), ev("C")],
            [want("A"), want("B"), want("C")],
            {"A": 10, "B": 10, "C": 10},
            id="equal_share",
        ),
        pytest.param(
            30,
            [ev("A"), ev("B"), ev("C")],
            [want("A", ev_max_a=6), want("B"), want("C")],
            {"A": 6, "B": 12, "C": 12},
            id="ev_max_leaves_room_to_others",
        ),
        pytest.param(
            100,
            [ev("A"), ev("B", max_a=16)],
            [want("A"), want("B")],
            {"A": 32, "B": 16},
            id="evse_max_caps_when_capacity_is_plenty",
        ),
        pytest.param(
            30,
            [ev("A", priority=2), ev("B")],
            [want("A"), want("B")],
            {"A": 20, "B": 10},
            id="priority_two_gets_twice",
        ),
        pytest.param(
            24,
            [ev(s) for s in "ABCD"],
            [want(s) for s in "ABCD"],
            {"A": 6, "B": 6, "C": 6, "D": 6},
            id="minimums_exactly_fit",
        ),
        pytest.param(
            20,
            [ev(s) for s in "ABCD"],
            [want(s) for s in "ABCD"],
            {"A": 20 / 3, "B": 20 / 3, "C": 20 / 3, "D": 0},
            id="one_paused_for_minimum",
        ),
        pytest.param(
            5, [ev("A"), ev("B")], [want("A"), want("B")], {"A": 0, "B": 0}, id="below_one_minimum_all_paused"
        ),
        pytest.param(30, [ev("A"), ev("B")], [want("A")], {"A": 30, "B": 0}, id="no_demand_no_current"),
        pytest.param(
            30,
            [ev("A"), ev("B")],
            [want("A"), want("B", wants_energy=False)],
            {"A": 30, "B": 0},
            id="ev_that_wants_nothing_is_idle",
        ),
        pytest.param(
            30,
            [ev("A"), ev("B")],
            [want("A"), want("B", ev_max_a=0)],
            {"A": 30, "B": 0},
            id="ev_max_zero_is_idle",
        ),
        pytest.param(
            30,
            [ev("A"), ev("B")],
            [want("A"), want("B", ev_max_a=3)],
            {"A": 24, "B": 6},
            id="ev_below_minimum_still_gets_minimum",
        ),
        pytest.param(
            None, [ev("A"), ev("B")], [want("A"), want("B")], {"A": 32, "B": 32}, id="unlimited_node"
        ),
        pytest.param(0, [ev("A", min_a=0)], [want("A")], {"A": 0}, id="zero_limit"),
    ],
)
def test_one_feeder_is_shared_max_min_fairly(
    limit_a: float | None, evses: list[Evse], demands: list[Demand], expected: dict[str, float]
) -> None:
    result = run(feeder(limit_a, *evses), demands)
    assert amps(result) == pytest.approx(expected)


def test_margin_base_load_and_kw_limit_shrink_the_share() -> None:
    t = feeder(None, ev("A"), ev("B"), limit_kw=27.6, margin_a=4.0, base_load_a=(6.0, 0.0, 0.0))
    # 27.6 kW / (3 * 230 V) = 40 A per phase; L1 has 40 - 4 - 6 = 30 A for the two EVSEs
    assert amps(run(t, [want("A"), want("B")])) == pytest.approx({"A": 15, "B": 15})


def test_reasons_name_the_bottleneck() -> None:
    t = Topology(
        [Node("P", limit_a=40), Node("F1", "P", limit_a=12), Node("F2", "P")],
        [ev("A", "F1"), ev("B", "F2"), ev("C", "F2"), ev("D", "F2", max_a=8), ev("E", "F2")],
    )
    result = run(t, [want("A"), want("B"), want("C", ev_max_a=7), want("D")])
    assert reasons(result) == {"A": "node:F1", "B": "node:P", "C": "ev_max", "D": "evse_max", "E": "idle"}
    assert amps(result) == pytest.approx({"A": 12, "B": 13, "C": 7, "D": 8, "E": 0})


# -- the tree ---------------------------------------------------------------------


def test_child_feeder_caps_increase_to_parent_headroom() -> None:
    t = Topology(
        [Node("P", limit_a=40), Node("F1", "P", limit_a=40), Node("F2", "P", limit_a=30)],
        [ev("A", "F1"), ev("B", "F1"), ev("C", "F2")],
    )
    # F1 alone would give A and B 20 each; P has only 40 - 10 = 30 left for them
    result = run(t, [want("A"), want("B"), want("C", ev_max_a=10)])
    assert amps(result) == pytest.approx({"A": 15, "B": 15, "C": 10})
    assert result.node("P").headroom_a == pytest.approx((0, 0, 0))
    assert result.node("F1").headroom_a == pytest.approx((10, 10, 10))


def test_headroom_a_child_cannot_use_goes_to_its_siblings() -> None:
    t = Topology(
        [Node("P", limit_a=60), Node("F1", "P", limit_a=10), Node("F2", "P")],
        [ev("A", "F1"), ev("B", "F1"), ev("C", "F2"), ev("D", "F2")],
    )
    # F1 fits only one minimum: A runs at F1's 10 A, B waits; C and D share the other 50 A
    result = run(t, [want(s) for s in "ABCD"])
    assert amps(result) == pytest.approx({"A": 10, "B": 0, "C": 25, "D": 25})


def test_limit_cut_at_runtime_lowers_everyone_under_it() -> None:
    t = feeder(64, ev("A"), ev("B"))
    first = run(t, [want("A"), want("B")])
    cut = run(t.with_limit("F", 20), [want("A"), want("B")], previous=first, now=5)
    assert amps(first) == {"A": 32, "B": 32}
    assert amps(cut) == {"A": 10, "B": 10}


# -- phases -----------------------------------------------------------------------


def test_single_phase_evses_on_different_phases_do_not_compete() -> None:
    t = feeder(16, *(ev(s, phases=1, phase_connection=(p,)) for p, s in enumerate("ABC", 1)))
    result = run(t, [want(s) for s in "ABC"])
    assert amps(result) == {"A": 16, "B": 16, "C": 16}
    assert result.node("F").allocated_a == (16, 16, 16)


def test_three_phase_evse_competes_on_every_phase() -> None:
    t = feeder(
        20,
        ev("A"),
        ev("B", phases=1, phase_connection=(1,)),
        ev("C", phases=1, phase_connection=(2,)),
        ev("D", phases=1, phase_connection=(2,)),
    )
    result = run(t, [want(s) for s in "ABCD"])
    # L2 fills first (A, C, D at 20/3); then B takes what A leaves on L1
    assert amps(result) == pytest.approx({"A": 20 / 3, "B": 40 / 3, "C": 20 / 3, "D": 20 / 3})
    assert result.node("F").allocated_a == pytest.approx((20, 20, 20 / 3))


def test_phase_connection_decides_which_grid_phase_a_single_phase_evse_loads() -> None:
    t = feeder(None, ev("A", phases=1, phase_connection=(3,), max_a=16))
    assert run(t, [want("A")]).node("F").allocated_a == (0, 0, 16)


def test_one_phase_car_on_rotated_three_phase_evse_loads_only_its_first_grid_phase() -> None:
    t = feeder(20, ev("A", phase_connection=(2, 3, 1)), ev("B", phases=1, phase_connection=(1,)))
    result = run(t, [want("A", phases_in_use=1), want("B")])
    assert amps(result) == {"A": 20, "B": 20}
    assert result.evse("A", 1).phases == 1
    assert result.node("F").allocated_a == (20, 20, 0)


def test_phases_in_use_beyond_the_evse_is_refused() -> None:
    t = feeder(20, ev("A", phases=1))
    with pytest.raises(TopologyError, match="phases_in_use"):
        allocate(t, [want("A", phases_in_use=3)], now=0)


# -- minimum current rule and rotation --------------------------------------------


def test_waiting_longest_gets_the_minimum_first() -> None:
    t = feeder(12, ev("A"), ev("B"), ev("C"))
    result = run(t, [want("A", plugged_at=-30), want("B", plugged_at=-90), want("C", plugged_at=-60)])
    assert amps(result) == {"A": 0, "B": 6, "C": 6}
    assert result.evse("A", 1).reason == "paused"
    assert result.evse("A", 1).waiting_since == -30


def test_without_history_ties_go_by_priority_then_topology_order() -> None:
    t = feeder(12, ev("A"), ev("B"), ev("C", priority=1.5))
    assert amps(run(t, [want(s) for s in "ABC"])) == {"A": 6, "B": 0, "C": 6}


def test_paused_evses_take_turns_every_rotation_period() -> None:
    t = feeder(12, ev("A"), ev("B"), ev("C"))
    settings = AllocationSettings(rotation_period_s=900)
    demands = [want(s) for s in "ABC"]
    paused: list[tuple[float, str]] = []
    previous = None
    for now in range(0, 3601, 300):
        previous = run(t, demands, previous=previous, now=float(now), settings=settings)
        (who,) = [a.station_id for a in previous.evses if a.current_a == 0]
        if not paused or paused[-1][1] != who:
            paused.append((now, who))
    # each run lasts one period; an EVSE past its period yields to the longest waiting
    assert paused == [
        (0, "C"),
        (900, "B"),
        (1200, "A"),
        (1800, "C"),
        (2100, "B"),
        (2700, "A"),
        (3000, "C"),
        (3600, "B"),
    ]


def test_smaller_evses_do_not_overtake_a_waiting_one_that_needs_more() -> None:
    one_phase: dict[str, Any] = {"phases": 1, "phase_connection": (1,)}
    t = feeder(12, ev("Y1", **one_phase), ev("X", min_a=10), ev("Y3", **one_phase))
    step = run(t, [want("Y1")], now=0)
    step = run(t, [want("Y1"), want("X")], previous=step, now=100)
    step = run(t, [want("Y1"), want("X"), want("Y3")], previous=step, now=200)
    assert amps(step) == {"Y1": 12, "X": 0, "Y3": 0}  # Y3 would fit, but X came first
    step = run(t, [want("Y1"), want("X"), want("Y3")], previous=step, now=900)
    assert amps(step) == {"Y1": 0, "X": 12, "Y3": 0}


def test_an_evse_that_can_never_fit_holds_nobody_back() -> None:
    one_phase: dict[str, Any] = {"phases": 1, "phase_connection": (1,)}
    t = feeder(12, ev("BIG", min_a=16), ev("Y", **one_phase), ev("Z", **one_phase))
    result = run(t, [want("BIG", plugged_at=-100), want("Y"), want("Z")])
    assert amps(result) == {"BIG": 0, "Y": 6, "Z": 6}


def test_an_evse_that_has_charged_queues_behind_those_still_waiting() -> None:
    t = feeder(6, ev("A"), ev("B"), ev("C"))
    demands = [want(s, plugged_at=0.0) for s in "ABC"]
    charging = []
    previous = None
    for now in (0.0, 900.0, 1800.0, 2700.0):
        previous = run(t, demands, previous=previous, now=now)
        charging += [a.station_id for a in previous.evses if a.current_a > 0]
    assert charging == ["A", "B", "C", "A"]


def test_a_started_evse_keeps_its_turn_until_the_period_ends() -> None:
    t = feeder(12, ev("A"), ev("B"), ev("C"))
    first = run(t, [want("A"), want("B")])
    later = run(t, [want(s) for s in "ABC"], previous=first, now=899)
    assert amps(later) == {"A": 6, "B": 6, "C": 0}


def test_a_cut_pauses_the_evse_that_has_charged_longest() -> None:
    t = feeder(24, ev("A"), ev("B"))
    a_alone = run(t, [want("A")], now=0)
    both = run(t, [want("A"), want("B")], previous=a_alone, now=500)
    cut = run(t.with_limit("F", 8), [want("A"), want("B")], previous=both, now=600)
    assert amps(cut) == {"A": 0, "B": 8}


def test_charging_and_waiting_times_carry_over() -> None:
    t = feeder(6, ev("A"), ev("B"))
    first = run(t, [want("A"), want("B")], now=10)
    second = run(t, [want("A"), want("B")], previous=first, now=20)
    assert second.evse("A", 1).charging_since == 10 and second.evse("A", 1).changed_at == 10
    assert second.evse("B", 1).waiting_since == 10 and second.evse("B", 1).charging_since is None
    assert second.evse("A", 1) is first.evse("A", 1)  # unchanged results are reused


# -- headroom an EV does not use ----------------------------------------------------


def test_unused_headroom_goes_to_others_and_comes_back_when_drawn() -> None:
    t = feeder(30, ev("A"), ev("B"))
    first = run(t, [want("A"), want("B")], now=0)
    assert amps(first) == {"A": 15, "B": 15}
    lazy = run(
        t, [want("A", measured_a=(4, 4, 4)), want("B", measured_a=(15, 15, 14))], previous=first, now=60
    )
    assert amps(lazy) == {"A": 6, "B": 24}  # A capped at draw + 2 A step, floored at min_a
    assert lazy.evse("A", 1).reason == "draw"
    busy = run(
        t, [want("A", measured_a=(5.9, 5.8, 5.9)), want("B", measured_a=(24, 24, 24))], previous=lazy, now=120
    )
    assert amps(busy) == {"A": 15, "B": 15}


def test_measured_draw_is_ignored_until_the_allocation_has_settled() -> None:
    t = feeder(30, ev("A"), ev("B"))
    first = run(t, [want("A"), want("B")], now=0)
    early = run(t, [want("A", measured_a=(4, 4, 4)), want("B")], previous=first, now=10)
    assert amps(early) == {"A": 15, "B": 15}


# -- rounding and hysteresis -------------------------------------------------------


def test_allocations_round_down_to_the_resolution() -> None:
    t = feeder(10, *(ev(s, min_a=1) for s in "ABC"))
    result = allocate(t, [want(s) for s in "ABC"], now=0)
    assert amps(result) == {"A": 3.3, "B": 3.3, "C": 3.3}


def test_small_increases_are_skipped_but_leave_at_most_one_band_unused() -> None:
    t = feeder(30, ev("A"), ev("B"), ev("C"))
    first = allocate(t, [want(s) for s in "ABC"], now=0)
    raised = allocate(t.with_limit("F", 32), [want(s) for s in "ABC"], first, now=60)
    assert amps(raised) == {"A": 10, "B": 10.6, "C": 10.6}
    assert raised.evse("A", 1).reason == "hysteresis"
    assert check_allocation(raised) == []


def test_near_equal_allocations_do_not_flap() -> None:
    t = feeder(20, ev("A"), ev("B"))
    base = allocate(t, [want("A"), want("B")], now=0)
    skewed = dataclasses.replace(
        base,
        evses=(base.evses[0]._replace(current_a=10.4), base.evses[1]._replace(current_a=9.6)),
    )
    again = allocate(t, [want("A"), want("B")], skewed, now=60)
    assert amps(again) == {"A": 10.4, "B": 9.6}
    assert check_allocation(again) == []


def test_safety_wins_over_hysteresis() -> None:
    t = feeder(30, ev("A"), ev("B"))
    first = allocate(t, [want("A"), want("B")], now=0)
    cut = allocate(t.with_limit("F", 29.6), [want("A"), want("B")], first, now=60)
    assert amps(cut) == {"A": 14.8, "B": 14.8}


def test_large_changes_pass_hysteresis() -> None:
    t = feeder(30, ev("A"), ev("B"), ev("C"))
    first = allocate(t, [want("A"), want("B")], now=0)
    third = allocate(t, [want(s) for s in "ABC"], first, now=60)
    assert amps(third) == {"A": 10, "B": 10, "C": 10}


# -- loads that are not balanced -------------------------------------------------------


def test_fixed_load_is_reserved_before_sharing() -> None:
    t = feeder(32, ev("A"), ev("B"))
    result = run(t, [want("A", fixed_a=20), want("B")])
    assert amps(result) == {"A": 20, "B": 12}
    assert result.evse("A", 1).reason == "fixed"
    assert result.node("F").allocated_a == (32, 32, 32)


def test_fixed_load_above_the_limit_pauses_the_rest_and_flags_the_node() -> None:
    t = feeder(32, ev("A"), ev("B"))
    result = run(t, [want("A", fixed_a=40), want("B")])
    assert amps(result) == {"A": 40, "B": 0}
    assert result.node("F").overloaded
    assert check_allocation(result) == []  # nothing assigned exceeds what is left


# -- results --------------------------------------------------------------------------


def test_node_totals_report_allocation_headroom_utilisation_and_measurement() -> None:
    t = Topology(
        [Node("P", limit_a=50, base_load_a=(5, 5, 5)), Node("F", "P", limit_a=100)],
        [ev("A", "F", phases=1, phase_connection=(2,)), ev("B", "F")],
    )
    result = run(t, [want("A", measured_a=(12,)), want("B", measured_a=(10, 11, 12))])
    p = result.node("P")
    assert p.limit_a == 50 and p.available_a == (45, 45, 45)
    assert p.allocated_a == pytest.approx((22.5, 45, 22.5))  # L2 is full at P
    assert p.headroom_a == pytest.approx((22.5, 0, 22.5))
    assert p.utilisation == pytest.approx(1.0)
    assert p.measured_a == (15, 28, 17)
    assert result.node("F").utilisation == pytest.approx(0.45)
    assert [a.station_id for a in result.evses_under("F")] == ["A", "B"]


def test_changes_list_decreases_before_increases() -> None:
    t = feeder(40, ev("A"), ev("B"), ev("C"))
    first = run(t, [want("A"), want("B")])
    second = run(t, [want("B"), want("C")], previous=first, now=1)
    changes = [(a.station_id, a.current_a) for a in second.changes_from(first)]
    assert changes == [("A", 0), ("C", 20)]
    assert second.changes_from(second) == []
    assert [a.station_id for a in first.changes_from(None)] == ["A", "B", "C"]


def test_previous_from_an_older_topology_is_matched_by_key() -> None:
    old = feeder(12, ev("A"), ev("C"))
    first = run(old, [want("A"), want("C")], now=0)
    new = feeder(12, ev("A"), ev("B"), ev("C"))
    second = run(new, [want(s) for s in "ABC"], previous=first, now=10)
    assert amps(second) == {"A": 6, "B": 0, "C": 6}
    assert second.evse("C", 1).charging_since == 0


def test_unknown_or_duplicate_demands_are_refused() -> None:
    t = feeder(12, ev("A"))
    with pytest.raises(TopologyError, match="not in the topology"):
        allocate(t, [want("Z")], now=0)
    with pytest.raises(TopologyError, match="two demands"):
        allocate(t, [want("A"), want("A")], now=0)


def test_result_does_not_depend_on_the_order_of_demands() -> None:
    rng = random.Random(7)
    nodes = [Node("P", limit_a=150)] + [Node(f"F{k}", "P", limit_a=70) for k in range(4)]
    evses = [
        ev(
            f"S{i:02d}",
            f"F{i % 4}",
            phases=1,
            phase_connection=(rng.randint(1, 3),),
            priority=rng.choice((1.0, 2.0)),
        )
        if rng.random() < 0.4
        else ev(f"S{i:02d}", f"F{i % 4}", priority=rng.choice((1.0, 2.0)))
        for i in range(30)
    ]
    t = Topology(nodes, evses)
    demands = [want(e.station_id, ev_max_a=rng.choice((None, 10.0))) for e in evses[:25]]
    reference = allocate(t, demands, now=0)
    for _ in range(5):
        rng.shuffle(demands)
        assert allocate(t, demands, now=0).evses == reference.evses


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="hysteresis_a"):
        AllocationSettings(hysteresis_a=-1)
    with pytest.raises(ValueError, match="headroom_step_a"):
        AllocationSettings(headroom_step_a=0)


@pytest.mark.parametrize(
    ("limit_a", "demands", "expected"),
    [
        (30, [want("A"), want("B"), want("C")], {"A": 10, "B": 10, "C": 10}),
        (30, [want("A", ev_max_a=6), want("B"), want("C")], {"A": 6, "B": 12, "C": 12}),
        (15, [want("A"), want("B"), want("C")], {"A": 7.5, "B": 7.5, "C": 0}),
    ],
)
def test_the_example_in_the_docs_holds(
    limit_a: float, demands: list[Demand], expected: dict[str, float]
) -> None:
    t = feeder(limit_a, ev("A"), ev("B"), ev("C"))
    assert amps(run(t, demands)) == expected
    weighted = feeder(30, ev("A"), ev("B", priority=2), ev("C"))
    assert amps(run(weighted, [want(s) for s in "ABC"])) == {"A": 7.5, "B": 15, "C": 7.5}
    first = run(t.with_limit("F", 30), [want(s) for s in "ABC"])
    lazy = run(
        t.with_limit("F", 30), [want("A", measured_a=(3, 3, 3)), want("B"), want("C")], previous=first, now=60
    )
    assert amps(lazy) == {"A": 6, "B": 12, "C": 12}


def test_lifting_and_setting_a_limit_at_runtime_changes_which_nodes_bind() -> None:
    t = Topology([Node("P", limit_a=20), Node("F", "P")], [ev("A", "F"), ev("B", "F")])
    demands = [want("A"), want("B")]
    assert amps(run(t, demands)) == {"A": 10, "B": 10}
    lifted = t.with_limit("P", None)
    assert amps(run(lifted, demands)) == {"A": 32, "B": 32}
    assert amps(run(lifted.with_limit("F", 12), demands)) == {"A": 6, "B": 6}
