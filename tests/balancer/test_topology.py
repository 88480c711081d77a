"""The feeder tree: validation, configuration shape, derived capacities, runtime changes."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from csms.balancer.topology import (
    PHASES,
    CompiledTopology,
    Evse,
    Node,
    Topology,
    TopologyError,
    evse_from_dict,
    node_from_dict,
    parse_phase_connection,
    push_up,
    topology_from_config,
)


def site(**overrides: Any) -> dict[str, Any]:
    """A small valid ``[balancer]`` table; ``overrides`` replace whole keys."""
    table: dict[str, Any] = {
        "nodes": [
            {"id": "trafo", "limit_kw": 400.0, "margin_a": 10.0},
            {"id": "feeder-1", "parent": "trafo", "limit_a": 250.0, "base_load_a": [20, 15, 18]},
            {"id": "feeder-2", "parent": "trafo", "limit_a": 160.0},
        ],
        "evses": [
            {"station_id": "CP1", "evse_id": 1, "node": "feeder-1"},
            {"station_id": "CP1", "evse_id": 2, "node": "feeder-1", "phases": 1, "phase_connection": "L2"},
            {
                "station_id": "CP2",
                "evse_id": 1,
                "node": "feeder-2",
                "phase_connection": "L3L1L2",
                "min_a": 8,
                "max_a": 16,
                "priority": 2,
            },
        ],
    }
    table.update(overrides)
    return table


def test_builds_from_the_config_tables() -> None:
    t = topology_from_config(site())
    assert [n.id for n in t.nodes] == ["trafo", "feeder-1", "feeder-2"]
    assert t.node("feeder-1") == Node("feeder-1", "trafo", 250.0, None, 0.0, (20.0, 15.0, 18.0))
    assert t.evse("CP1", 2) == Evse("CP1", 2, "feeder-1", 1, (2,), 6.0, 32.0, 1.0)
    cp2 = t.evse("CP2", 1)
    assert cp2 is not None and cp2.phase_connection == (3, 1, 2) and cp2.priority == 2.0
    assert cp2.grid_phases == (2, 0, 1)
    assert t.evse("CP9", 1) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nodes": [{"id": "a", "parent": "nowhere"}]}, "unknown parent"),
        ({"nodes": [{"id": "a", "parent": "b"}, {"id": "b", "parent": "a"}]}, "cycle"),
        ({"nodes": [{"id": "a", "parent": "a"}]}, "its own parent"),
        ({"nodes": [{"id": "a"}, {"id": "a"}]}, "duplicate node"),
        ({"nodes": [{"id": "a", "limit_a": -1}]}, "limit_a must be >= 0"),
        ({"nodes": [{"id": "a", "limit_kw": -5}]}, "limit_kw must be >= 0"),
        ({"nodes": [{"id": "a", "margin_a": -1}]}, "margin_a must be >= 0"),
        ({"nodes": [{"id": "a", "base_load_a": [1, 2]}]}, "base_load_a"),
        ({"nodes": [{"id": "a", "base_load_a": -3}]}, "base_load_a"),
        ({"nodes": [{"id": "a", "limit_a": "lots"}]}, "limit_a must be a number"),
        ({"nodes": [{"id": "a", "colour": "red"}]}, "unknown keys colour"),
        ({"nodes": [{"parent": "a"}]}, "missing id"),
        ({"evses": [{"station_id": "X", "evse_id": 1, "node": "nowhere"}]}, "unknown node"),
        ({"evses": [{"station_id": "CP1", "evse_id": 1, "node": "trafo"}] * 2}, "duplicate EVSE"),
        (
            {"evses": [{"station_id": "X", "evse_id": 1, "node": "trafo", "min_a": 20, "max_a": 10}]},
            "min_a 20.0 > max_a 10.0",
        ),
        ({"evses": [{"station_id": "X", "evse_id": 1, "node": "trafo", "max_a": 0}]}, "max_a"),
        ({"evses": [{"station_id": "X", "evse_id": 1, "node": "trafo", "min_a": -1}]}, "min_a"),
        (
            {"evses": [{"station_id": "X", "evse_id": 1, "node": "trafo", "phases": 2}]},
            "phases must be 1 or 3",
        ),
        (
            {"evses": [{"station_id": "X", "evse_id": 1, "node": "trafo", "phase_connection": "L1"}]},
            "must name 3 distinct grid phases",
        ),
        (
            {
                "evses": [
                    {"station_id": "X", "evse_id": 1, "node": "trafo", "phases": 1, "phase_connection": "L4"}
                ]
            },
            "cannot parse phase_connection",
        ),
        (
            {"evses": [{"station_id": "X", "evse_id": 1, "node": "trafo", "phase_connection": "L1L1L2"}]},
            "distinct",
        ),
        ({"evses": [{"station_id": "X", "evse_id": 1, "node": "trafo", "priority": 0}]}, "priority"),
        ({"evses": [{"station_id": "X", "evse_id": True, "node": "trafo"}]}, "evse_id"),
        ({"phase_voltage_v": 0}, "phase_voltage_v"),
    ],
)
def test_invalid_site_is_refused_with_a_clear_error(change: dict[str, Any], message: str) -> None:
    table = site(**change)
    if "evses" in change and "nodes" not in change:
        table["nodes"] = site()["nodes"]
    if "nodes" in change and "evses" not in change:
        table["evses"] = []
    with pytest.raises(TopologyError, match=message):
        topology_from_config(table)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("L2", (2,)),
        ("l3", (3,)),
        ("L2L3L1", (2, 3, 1)),
        ("L1, L2, L3", (1, 2, 3)),
        ("231", (2, 3, 1)),
        (["L3", "L1", "L2"], (3, 1, 2)),
        ([2, 3, 1], (2, 3, 1)),
    ],
)
def test_phase_connection_accepts_the_usual_spellings(text: Any, expected: tuple[int, ...]) -> None:
    assert parse_phase_connection(text) == expected


def test_kw_limit_converts_with_the_nominal_phase_voltage() -> None:
    # 69 kW over three phases at 230 V is 100 A per phase
    t = Topology([Node("a", limit_kw=69.0)], [])
    assert t.available_a("a") == pytest.approx((100.0, 100.0, 100.0))
    t110 = Topology([Node("a", limit_kw=69.0)], [], phase_voltage_v=115.0)
    assert t110.available_a("a") == pytest.approx((200.0, 200.0, 200.0))


def test_tighter_of_ampere_and_kw_limits_wins() -> None:
    t = Topology([Node("a", limit_a=80.0, limit_kw=69.0), Node("b", limit_a=120, limit_kw=69.0)], [])
    assert t.available_a("a") == pytest.approx((80.0, 80.0, 80.0))
    assert t.available_a("b") == pytest.approx((100.0, 100.0, 100.0))


def test_margin_and_base_load_reduce_what_is_available_per_phase() -> None:
    t = Topology([Node("a", limit_a=100.0, margin_a=5.0, base_load_a=(10.0, 0.0, 30.0))], [])
    assert t.available_a("a") == (85.0, 95.0, 65.0)


def test_base_load_above_the_limit_leaves_nothing_rather_than_negative() -> None:
    t = Topology([Node("a", limit_a=100.0, base_load_a=(120.0, 0.0, 0.0))], [])
    assert t.available_a("a") == (0.0, 100.0, 100.0)


def test_node_without_limits_is_unlimited() -> None:
    t = Topology([Node("group")], [])
    assert all(math.isinf(a) for a in t.available_a("group"))


def test_with_limit_returns_a_new_topology_and_leaves_the_old_one_alone() -> None:
    t = topology_from_config(site())
    cut = t.with_limit("feeder-1", 100.0)
    assert cut.node("feeder-1").limit_a == 100.0
    assert cut.available_a("feeder-1") == (80.0, 85.0, 82.0)  # base load still counted
    assert t.node("feeder-1").limit_a == 250.0
    assert cut.evses == t.evses
    assert t.with_limit("feeder-1", None).available_a("feeder-1")[0] == math.inf


def test_with_limit_refuses_unknown_nodes_and_negative_limits() -> None:
    t = topology_from_config(site())
    with pytest.raises(TopologyError, match="unknown node"):
        t.with_limit("nowhere", 10.0)
    with pytest.raises(TopologyError, match="limit_a must be >= 0"):
        t.with_limit("feeder-1", -1.0)


def test_with_base_load_takes_one_value_or_one_per_phase() -> None:
    t = Topology([Node("a", limit_a=100.0)], [])
    assert t.with_base_load("a", 40.0).available_a("a") == (60.0, 60.0, 60.0)
    assert t.with_base_load("a", [10, 20, 30]).available_a("a") == (90.0, 80.0, 70.0)
    with pytest.raises(TopologyError, match="base_load_a"):
        t.with_base_load("a", [-1, 0, 0])


def test_nodes_come_parents_first_and_subtrees_are_contiguous() -> None:
    t = Topology(
        [Node("f2", "root"), Node("root"), Node("s1", "f1"), Node("f1", "root")],
        [Evse("B", 1, "f2"), Evse("A", 1, "s1"), Evse("C", 1, "f1"), Evse("D", 1, "root")],
    )
    assert [n.id for n in t.nodes] == ["root", "f1", "s1", "f2"]
    assert [e.station_id for e in t.evses] == ["D", "C", "A", "B"]
    assert t.parent_chain("s1") == ("s1", "f1", "root")


def test_a_very_deep_chain_is_fine() -> None:
    nodes = [Node("n0")] + [Node(f"n{i}", f"n{i - 1}", limit_a=100.0) for i in range(1, 3000)]
    t = Topology(nodes, [Evse("deep", 1, "n2999")])
    assert len(t.parent_chain("n2999")) == 3000


def test_dict_builders_fill_defaults() -> None:
    assert node_from_dict({"id": "x"}) == Node("x")
    evse = evse_from_dict({"station_id": "S", "evse_id": 1, "node": "x"})
    assert (evse.phases, evse.min_a, evse.max_a, evse.priority) == (3, 6.0, 32.0, 1.0)
    assert evse.grid_phases == (0, 1, 2)


def test_many_meter_readings_apply_in_one_copy() -> None:
    t = Topology([Node("a", limit_a=100.0), Node("b", "a", limit_a=50.0)], [])
    read = t.with_base_loads({"a": 30.0, "b": (5.0, 10.0, 15.0)})
    assert read.available_a("a") == (70.0, 70.0, 70.0)
    assert read.available_a("b") == (45.0, 40.0, 35.0)
    with pytest.raises(TopologyError, match="unknown node"):
        t.with_base_loads({"c": 1.0})


# -- the compiled view ------------------------------------------------------


def small_tree() -> Topology:
    """root (unlimited) -> f1 (100 A) -> s1 (40 A, base load on L2); root -> f2 (60 A)."""
    return Topology(
        [
            Node("root"),
            Node("f1", "root", limit_a=100.0, margin_a=5.0),
            Node("s1", "f1", limit_a=40.0, base_load_a=(0.0, 10.0, 0.0)),
            Node("f2", "root", limit_a=60.0),
        ],
        [
            Evse("A", 1, "s1"),
            Evse("B", 1, "f1", phases=1, phase_connection=(2,)),
            Evse("C", 1, "f2", phases=1, phase_connection=(3,)),
            Evse("C", 2, "f2", phase_connection=(2, 3, 1)),
        ],
    )


def test_compiled_view_numbers_nodes_depth_first_with_contiguous_subtrees() -> None:
    c = small_tree().compiled
    assert [n.id for n in c.nodes] == ["root", "f1", "s1", "f2"]
    assert [e.key for e in c.evses] == [("B", 1), ("A", 1), ("C", 1), ("C", 2)]
    assert dict(c.node_index) == {"root": 0, "f1": 1, "s1": 2, "f2": 3}
    assert dict(c.evse_index) == {("B", 1): 0, ("A", 1): 1, ("C", 1): 2, ("C", 2): 3}
    assert c.parent == (-1, 0, 1, 0)
    assert c.children == ((1, 3), (2,), (), ())
    assert c.subtree_end == (4, 3, 3, 4)
    assert c.subtree_evses == ((0, 4), (0, 2), (1, 2), (2, 4))
    assert c.own_evses == ((0, 0), (0, 1), (1, 2), (2, 4))
    assert c.up_pairs == ((9, 0), (6, 3), (3, 0))  # children before parents


def test_compiled_view_maps_each_evse_to_its_node_path_and_phases() -> None:
    c = small_tree().compiled
    assert c.evse_node == (1, 2, 3, 3)
    assert c.evse_path == ((1, 0), (2, 1, 0), (3, 0), (3, 0))
    assert c.evse_mask == (0b010, 0b111, 0b100, 0b111)
    assert c.evse_own == ((4,), (6, 7, 8), (11,), (10, 11, 9))  # in the EVSE's own phase order
    assert c.evse_phases == (1, 3, 1, 3)
    assert (c.evse_min_a, c.evse_max_a, c.evse_priority) == ((6.0,) * 4, (32.0,) * 4, (1.0,) * 4)


def test_compiled_capacity_skips_unlimited_nodes() -> None:
    c = small_tree().compiled
    assert c.limit_a == (None, 100.0, 40.0, 60.0)
    assert c.available_a == (math.inf,) * 3 + (95.0,) * 3 + (40.0, 30.0, 40.0) + (60.0,) * 3
    # the root is unlimited: no constraint of node 0 appears on any path
    assert c.evse_constraints == ((4,), (6, 7, 8, 3, 4, 5), (11,), (9, 10, 11))
    assert c.constraints((2, 1, 0), 0b001) == (6, 3)


def test_compiled_view_is_read_only() -> None:
    c = small_tree().compiled
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.parent = ()  # type: ignore[misc]


def test_a_runtime_change_shares_the_structure_and_recompiles_capacity() -> None:
    t = small_tree()
    cut = t.with_limit("s1", 20.0)
    assert cut.compiled.node_index is t.compiled.node_index
    assert cut.compiled.evse_index is t.compiled.evse_index
    assert cut.compiled.evse_constraints is t.compiled.evse_constraints  # the same nodes are limited
    assert cut.compiled.available_a[6:9] == (20.0, 10.0, 20.0)
    assert cut.compiled.limit_a[2] == 20.0 and cut.limit_a("s1") == 20.0
    assert t.compiled.available_a[6:9] == (40.0, 30.0, 40.0)
    lifted = t.with_limit("f2", None)
    assert lifted.compiled.evse_constraints[2:] == ((), ())


def test_push_up_adds_each_subtree_into_its_ancestors() -> None:
    c = small_tree().compiled
    amounts = [0.0] * (len(c.nodes) * PHASES)
    amounts[6] = 1.0  # s1 L1
    amounts[4] = 2.0  # f1 L2
    amounts[11] = 4.0  # f2 L3
    push_up(c, 0, len(c.nodes), (amounts,))
    assert amounts == [1.0, 2.0, 4.0, 1.0, 2.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 4.0]
    partial = [0.0] * (len(c.nodes) * PHASES)
    partial[6] = 1.0
    push_up(c, 2, 3, (partial,))  # s1's subtree only: its total still reaches the root
    assert partial[:9] == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]


def test_evses_at_lists_only_the_evses_attached_to_the_node() -> None:
    t = small_tree()
    assert [e.key for e in t.evses_at("f1")] == [("B", 1)]
    assert [e.key for e in t.evses_at("f2")] == [("C", 1), ("C", 2)]
    assert t.evses_at("root") == ()
    assert isinstance(t.compiled, CompiledTopology)
