"""The feeder tree the balancer shares capacity over.

A site is a forest of :class:`Node` (grid connection -> substation -> feeder ->
sub-feeder ...), each with an optional per-phase current limit and/or power
limit, a safety margin and a measured non-EV base load. :class:`Evse` entries
hang under a node. :class:`Topology` validates the whole and compiles it into a
read-only :class:`CompiledTopology` (index arrays) that
:func:`csms.balancer.allocate.allocate` works on; it is immutable, and runtime
changes (:meth:`Topology.with_limit`, :meth:`Topology.with_base_load`) return a
new one.

Pure: standard library only, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

PHASES = 3
"""Grid phases L1, L2, L3; internally indexed 0, 1, 2."""

EvseKey = tuple[str, int]
"""(station_id, evse_id)."""

Phase3 = tuple[float, float, float]


class TopologyError(ValueError):
    """The topology (or a runtime change to it) is invalid; the message says why."""


@dataclass(frozen=True, slots=True)
class Node:
    """A point of the grid with a capacity: transformer, feeder, sub-feeder, cabinet.

    ``limit_a`` is per phase; ``limit_kw`` is converted to a per-phase current with
    the topology's nominal phase voltage (``kw * 1000 / (3 * V)``). With both, the
    tighter wins; with neither, the node is unlimited (it only groups children).
    The usable current per phase is ``limit - margin_a - base_load_a[phase]``.
    """

    id: str
    parent: str | None = None
    limit_a: float | None = None
    limit_kw: float | None = None
    margin_a: float = 0.0
    base_load_a: Phase3 = (0.0, 0.0, 0.0)
    metered: bool = False  # a meter reports its load (MQTT): watched for silence from start-up


@dataclass(frozen=True, slots=True)
class Evse:
    """One controllable outlet under ``node``.

    ``phase_connection`` lists the grid phases (1..3) the EVSE's own L1, L2, L3
    are wired to, e.g. ``(2,)`` for a single-phase EVSE on grid L2, ``(2, 3, 1)``
    for a rotated three-phase one. ``None`` means ``(1, 2, 3)[:phases]``.
    ``priority`` is the weight in weighted max-min sharing (2.0 gets twice the
    current of 1.0 when both are constrained by the same node).
    """

    station_id: str
    evse_id: int
    node: str
    phases: int = 3
    phase_connection: tuple[int, ...] | None = None
    min_a: float = 6.0
    max_a: float = 32.0
    priority: float = 1.0

    @property
    def key(self) -> EvseKey:
        return (self.station_id, self.evse_id)

    @property
    def grid_phases(self) -> tuple[int, ...]:
        """Grid phase indices (0-based) loaded, in the EVSE's own phase order."""
        conn = self.phase_connection or (1, 2, 3)[: self.phases]
        return tuple(p - 1 for p in conn)


@dataclass(frozen=True, slots=True)
class CompiledTopology:
    """The feeder tree as index arrays, read-only: what the allocation works on.

    Nodes are numbered in depth-first order (parents before children, children
    sorted by id) and EVSEs in the order of their nodes (sorted by key within a
    node), so every subtree is one contiguous range of nodes and of EVSEs. A
    *constraint* is one (node, phase) pair, numbered ``node * 3 + phase``.

    Built once per :class:`Topology`; a runtime change (limit, base load) shares
    the structure and recompiles only the capacity fields.
    """

    nodes: tuple[Node, ...]
    """Every node, depth-first."""
    evses: tuple[Evse, ...]
    """Every EVSE, in node order."""
    node_index: Mapping[str, int]
    """Node id -> position in ``nodes``."""
    evse_index: Mapping[EvseKey, int]
    """EVSE key -> position in ``evses``."""
    parent: tuple[int, ...]
    """Per node: its parent's position, -1 for a root."""
    children: tuple[tuple[int, ...], ...]
    """Per node: its children's positions."""
    subtree_end: tuple[int, ...]
    """Per node: the end of its subtree; its descendants are ``node + 1 .. subtree_end - 1``."""
    subtree_evses: tuple[tuple[int, int], ...]
    """Per node: the ``(first, end)`` range of the EVSEs in its subtree."""
    own_evses: tuple[tuple[int, int], ...]
    """Per node: the ``(first, end)`` range of the EVSEs attached directly to it."""
    up_pairs: tuple[tuple[int, int], ...]
    """``(node * 3, parent * 3)`` for every non-root node, children before parents."""
    evse_node: tuple[int, ...]
    """Per EVSE: the position of its node."""
    evse_path: tuple[tuple[int, ...], ...]
    """Per EVSE: its node and the node's ancestors up to the root."""
    evse_mask: tuple[int, ...]
    """Per EVSE: bit mask of the grid phases it loads (bit 0 = L1)."""
    evse_own: tuple[tuple[int, ...], ...]
    """Per EVSE: the constraints of its own node that it loads, in its own phase order."""
    evse_min_a: tuple[float, ...]
    evse_max_a: tuple[float, ...]
    evse_priority: tuple[float, ...]
    evse_phases: tuple[int, ...]
    limit_a: tuple[float | None, ...]
    """Per node: the per-phase limit before margin and base load (kW converted); None if unlimited."""
    available_a: tuple[float, ...]
    """Per constraint: limit - margin - base load, >= 0; ``inf`` when unlimited."""
    evse_constraints: tuple[tuple[int, ...], ...]
    """Per EVSE: the limited constraints on its path that it loads."""

    def constraints(self, path: Sequence[int], mask: int) -> tuple[int, ...]:
        """The limited constraints of the nodes on ``path`` on the phases of ``mask``."""
        return _path_constraints(self.available_a, path, mask)


def push_up(index: CompiledTopology, first: int, end: int, arrays: tuple[list[float], ...]) -> None:
    """Add per-node amounts of nodes ``first..end-1`` (a subtree, or all) into their ancestors.

    The arrays are indexed by constraint. On entry each holds amounts at the nodes
    where they arise; on exit each node of the range holds its subtree's total, and
    the ancestors of the range's root have had the root's total added.
    """
    if first == 0 and end == len(index.nodes):
        for arr in arrays:
            for k, ku in index.up_pairs:
                arr[ku] += arr[k]
                arr[ku + 1] += arr[k + 1]
                arr[ku + 2] += arr[k + 2]
        return
    parent = index.parent
    for node in range(end - 1, first - 1, -1):
        up = parent[node]
        k = node * PHASES
        while up >= 0:
            ku = up * PHASES
            for arr in arrays:
                arr[ku] += arr[k]
                arr[ku + 1] += arr[k + 1]
                arr[ku + 2] += arr[k + 2]
            if up >= first:
                break
            up = parent[up]  # the range's root: add its total all the way up


def compile_topology(
    nodes: tuple[Node, ...], evses: tuple[Evse, ...], phase_voltage_v: float
) -> CompiledTopology:
    """Validate nodes and EVSEs and index them (see :class:`CompiledTopology`)."""
    by_id: dict[str, Node] = {}
    for node in nodes:
        if node.id in by_id:
            raise TopologyError(f"duplicate node id {node.id!r}")
        _check_node(node)
        by_id[node.id] = node
    children_of: dict[str | None, list[str]] = {}
    for node in nodes:
        if node.parent is not None and node.parent not in by_id:
            raise TopologyError(f"node {node.id!r}: unknown parent {node.parent!r}")
        children_of.setdefault(node.parent, []).append(node.id)
    evses_of: dict[str, list[Evse]] = {}
    seen: set[EvseKey] = set()
    for evse in evses:
        if evse.key in seen:
            raise TopologyError(f"duplicate EVSE {evse.key}")
        seen.add(evse.key)
        if evse.node not in by_id:
            raise TopologyError(f"EVSE {evse.key}: unknown node {evse.node!r}")
        _check_evse(evse)
        evses_of.setdefault(evse.node, []).append(evse)

    order: list[str] = []
    evse_order: list[Evse] = []
    ranges: dict[str, tuple[int, int]] = {}
    own_ranges: dict[str, tuple[int, int]] = {}
    node_end: dict[str, int] = {}
    # Depth-first, iteratively: ("enter", id) lists the node and its EVSEs and
    # schedules its children; ("leave", id) closes its node and EVSE ranges.
    stack: list[tuple[bool, str]] = [(True, r) for r in sorted(children_of.get(None, ()))[::-1]]
    starts: dict[str, int] = {}
    while stack:
        enter, node_id = stack.pop()
        if not enter:
            ranges[node_id] = (starts[node_id], len(evse_order))
            node_end[node_id] = len(order)
            continue
        order.append(node_id)
        starts[node_id] = len(evse_order)
        evse_order.extend(sorted(evses_of.get(node_id, ()), key=lambda e: e.key))
        own_ranges[node_id] = (starts[node_id], len(evse_order))
        stack.append((False, node_id))
        stack.extend((True, c) for c in sorted(children_of.get(node_id, ()))[::-1])
    if len(order) != len(nodes):
        stuck = sorted(set(by_id) - set(order))
        raise TopologyError(f"cycle in node parents among {stuck}")

    ordered = tuple(by_id[i] for i in order)
    ordered_evses = tuple(evse_order)
    node_index = {node_id: i for i, node_id in enumerate(order)}
    parent = tuple(-1 if n.parent is None else node_index[n.parent] for n in ordered)
    evse_node = tuple(node_index[e.node] for e in ordered_evses)
    paths: dict[int, tuple[int, ...]] = {}
    for i, up in enumerate(parent):  # parents come before children
        paths[i] = (i, *paths[up]) if up >= 0 else (i,)
    limits = _limits(ordered, phase_voltage_v)
    available = _available(ordered, limits)
    evse_path = tuple(paths[i] for i in evse_node)
    evse_mask = tuple(phase_mask(e.grid_phases) for e in ordered_evses)
    return CompiledTopology(
        nodes=ordered,
        evses=ordered_evses,
        node_index=node_index,
        evse_index={e.key: i for i, e in enumerate(ordered_evses)},
        parent=parent,
        children=tuple(tuple(node_index[c] for c in sorted(children_of.get(i, ()))) for i in order),
        subtree_end=tuple(node_end[i] for i in order),
        subtree_evses=tuple(ranges[i] for i in order),
        own_evses=tuple(own_ranges[i] for i in order),
        # (node * 3, parent * 3) for every non-root node, children before parents
        up_pairs=tuple((n * PHASES, p * PHASES) for n, p in reversed(list(enumerate(parent))) if p >= 0),
        evse_node=evse_node,
        evse_path=evse_path,
        evse_mask=evse_mask,
        evse_own=tuple(
            own_constraints(n, e.grid_phases) for n, e in zip(evse_node, ordered_evses, strict=True)
        ),
        evse_min_a=tuple(e.min_a for e in ordered_evses),
        evse_max_a=tuple(e.max_a for e in ordered_evses),
        evse_priority=tuple(e.priority for e in ordered_evses),
        evse_phases=tuple(e.phases for e in ordered_evses),
        limit_a=limits,
        available_a=available,
        evse_constraints=_evse_constraints(available, evse_path, evse_mask),
    )


def recompile_capacity(
    index: CompiledTopology, nodes: tuple[Node, ...], phase_voltage_v: float
) -> CompiledTopology:
    """``index`` with changed limits or base loads of the same nodes (same order, same EVSEs)."""
    limits = _limits(nodes, phase_voltage_v)
    available = _available(nodes, limits)
    if [a == math.inf for a in available] == [a == math.inf for a in index.available_a]:
        constraints = index.evse_constraints  # the same nodes are limited: same paths
    else:
        constraints = _evse_constraints(available, index.evse_path, index.evse_mask)
    return replace(index, nodes=nodes, limit_a=limits, available_a=available, evse_constraints=constraints)


def _limits(nodes: Sequence[Node], phase_voltage_v: float) -> tuple[float | None, ...]:
    return tuple(node_limit_a(node, phase_voltage_v) for node in nodes)


def _available(nodes: Sequence[Node], limits: Sequence[float | None]) -> tuple[float, ...]:
    avail: list[float] = []
    for limit, node in zip(limits, nodes, strict=True):
        for p in range(PHASES):
            if limit is None:
                avail.append(math.inf)
            else:
                avail.append(max(0.0, limit - node.margin_a - node.base_load_a[p]))
    return tuple(avail)


def _evse_constraints(
    available: tuple[float, ...], paths: Sequence[tuple[int, ...]], masks: Sequence[int]
) -> tuple[tuple[int, ...], ...]:
    return tuple(_path_constraints(available, path, mask) for path, mask in zip(paths, masks, strict=True))


def _path_constraints(available: Sequence[float], path: Sequence[int], mask: int) -> tuple[int, ...]:
    return tuple(
        c for n in path for p in range(PHASES) if mask >> p & 1 and available[c := n * PHASES + p] != math.inf
    )


class Topology:
    """A validated, immutable feeder tree with its EVSEs.

    ``compiled`` is its read-only index (:class:`CompiledTopology`), built when the
    topology is created or changed.
    """

    __slots__ = ("compiled", "phase_voltage_v")

    compiled: CompiledTopology
    phase_voltage_v: float

    def __init__(
        self, nodes: Iterable[Node], evses: Iterable[Evse], *, phase_voltage_v: float = 230.0
    ) -> None:
        if not phase_voltage_v > 0:
            raise TopologyError(f"phase_voltage_v must be > 0, got {phase_voltage_v}")
        self.phase_voltage_v = phase_voltage_v
        self.compiled = compile_topology(tuple(nodes), tuple(evses), phase_voltage_v)

    # -- queries -----------------------------------------------------------

    @property
    def nodes(self) -> tuple[Node, ...]:
        """All nodes, parents before children (depth-first, sorted by id)."""
        return self.compiled.nodes

    @property
    def evses(self) -> tuple[Evse, ...]:
        """All EVSEs in depth-first node order, sorted by key within a node."""
        return self.compiled.evses

    def node(self, node_id: str) -> Node:
        """The node with this id; :class:`KeyError` if unknown."""
        c = self.compiled
        return c.nodes[c.node_index[node_id]]

    def evse(self, station_id: str, evse_id: int) -> Evse | None:
        """The EVSE with this key, or ``None`` if it is not balanced."""
        c = self.compiled
        i = c.evse_index.get((station_id, evse_id))
        return None if i is None else c.evses[i]

    def evses_at(self, node_id: str) -> tuple[Evse, ...]:
        """The EVSEs attached directly to ``node_id``; :class:`KeyError` if unknown."""
        c = self.compiled
        first, end = c.own_evses[c.node_index[node_id]]
        return c.evses[first:end]

    def available_a(self, node_id: str) -> Phase3:
        """Usable current per phase (limit - margin - base load, >= 0); inf if unlimited."""
        c = self.compiled
        i = c.node_index[node_id] * PHASES
        a = c.available_a
        return (a[i], a[i + 1], a[i + 2])

    def limit_a(self, node_id: str) -> float | None:
        """The node's per-phase limit before margin and base load (kW converted); None if unlimited."""
        c = self.compiled
        return c.limit_a[c.node_index[node_id]]

    def parent_chain(self, node_id: str) -> tuple[str, ...]:
        """``node_id`` and its ancestors up to the root."""
        c = self.compiled
        out: list[str] = []
        i = c.node_index[node_id]
        while i >= 0:
            out.append(c.nodes[i].id)
            i = c.parent[i]
        return tuple(out)

    # -- runtime changes ---------------------------------------------------

    def with_limit(self, node_id: str, limit_a: float | None) -> Topology:
        """A copy with ``node_id``'s per-phase limit replaced (e.g. grid curtailment).

        ``limit_kw`` still applies if set: the tighter of the two wins.
        """
        return self._with_nodes({node_id: {"limit_a": limit_a}})

    def with_base_load(self, node_id: str, base_load_a: float | Sequence[float]) -> Topology:
        """A copy with ``node_id``'s measured non-EV load (per phase, or one value for all).

        A node whose meter stopped reporting can be set to its limit: it then counts
        as fully loaded and its EVSEs are paused.
        """
        return self.with_base_loads({node_id: base_load_a})

    def with_base_loads(self, loads: Mapping[str, float | Sequence[float]]) -> Topology:
        """A copy with the base loads of many nodes replaced at once (a round of meter readings)."""
        return self._with_nodes(
            {node_id: {"base_load_a": _phase3(load, f"node {node_id!r}")} for node_id, load in loads.items()}
        )

    def _with_nodes(self, changes: Mapping[str, Mapping[str, Any]]) -> Topology:
        c = self.compiled
        nodes = list(c.nodes)
        for node_id, change in changes.items():
            i = c.node_index.get(node_id)
            if i is None:
                raise TopologyError(f"unknown node {node_id!r}")
            nodes[i] = replace(nodes[i], **change)
            _check_node(nodes[i])
        new = object.__new__(Topology)
        new.phase_voltage_v = self.phase_voltage_v
        new.compiled = recompile_capacity(c, tuple(nodes), self.phase_voltage_v)
        return new

    def __repr__(self) -> str:
        return f"Topology({len(self.nodes)} nodes, {len(self.evses)} EVSEs)"


def node_limit_a(node: Node, phase_voltage_v: float = 230.0) -> float | None:
    """The node's per-phase current limit before margin and base load; None if unlimited."""
    limits = []
    if node.limit_a is not None:
        limits.append(node.limit_a)
    if node.limit_kw is not None:
        limits.append(node.limit_kw * 1000.0 / (PHASES * phase_voltage_v))
    return float(min(limits)) if limits else None


def own_constraints(node: int, grid_phases: Iterable[int]) -> tuple[int, ...]:
    """Indices ``node * 3 + phase`` of a node's phases that an EVSE loads."""
    return tuple(node * PHASES + p for p in grid_phases)


def phase_mask(phases: Iterable[int]) -> int:
    """Bit mask of grid phase indices (bit 0 = L1)."""
    mask = 0
    for p in phases:
        mask |= 1 << p
    return mask


def _check_node(node: Node) -> None:
    where = f"node {node.id!r}"
    if not isinstance(node.id, str) or not node.id:
        raise TopologyError(f"node id must be a non-empty string, got {node.id!r}")
    if node.parent == node.id:
        raise TopologyError(f"{where} is its own parent")
    for name in ("limit_a", "limit_kw"):
        value = getattr(node, name)
        if value is not None and not (_finite(value) and value >= 0):
            raise TopologyError(f"{where}: {name} must be >= 0, got {value}")
    if not (_finite(node.margin_a) and node.margin_a >= 0):
        raise TopologyError(f"{where}: margin_a must be >= 0, got {node.margin_a}")
    _phase3(node.base_load_a, where)


def _check_evse(evse: Evse) -> None:
    where = f"EVSE {evse.key}"
    if evse.phases not in (1, 3):
        raise TopologyError(f"{where}: phases must be 1 or 3, got {evse.phases}")
    conn = evse.phase_connection
    if conn is not None and (
        len(conn) != evse.phases or len(set(conn)) != len(conn) or not set(conn) <= {1, 2, 3}
    ):
        raise TopologyError(f"{where}: phase_connection {conn} must name {evse.phases} distinct grid phases")
    if not (_finite(evse.min_a) and evse.min_a >= 0):
        raise TopologyError(f"{where}: min_a must be >= 0, got {evse.min_a}")
    if not (_finite(evse.max_a) and evse.max_a > 0):
        raise TopologyError(f"{where}: max_a must be > 0, got {evse.max_a}")
    if evse.min_a > evse.max_a:
        raise TopologyError(f"{where}: min_a {evse.min_a} > max_a {evse.max_a}")
    if not (_finite(evse.priority) and 0.01 <= evse.priority <= 100):
        raise TopologyError(f"{where}: priority must be in [0.01, 100], got {evse.priority}")


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _phase3(value: float | Sequence[float], where: str) -> Phase3:
    values = [value] * PHASES if isinstance(value, int | float) else list(value)
    if len(values) != PHASES or not all(_finite(v) and v >= 0 for v in values):
        raise TopologyError(f"{where}: base_load_a must be one value or {PHASES} values >= 0, got {value!r}")
    return (float(values[0]), float(values[1]), float(values[2]))


# -- building from configuration data -------------------------------------

_NODE_KEYS = {"id", "parent", "limit_a", "limit_kw", "margin_a", "base_load_a", "metered"}
_EVSE_KEYS = {
    "station_id",
    "evse_id",
    "node",
    "phases",
    "phase_connection",
    "min_a",
    "max_a",
    "priority",
}


def _bool(value: Any, where: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise TopologyError(f"{where}: {key} must be true or false, got {value!r}")
    return value


def node_from_dict(data: Mapping[str, Any]) -> Node:
    """A :class:`Node` from one ``[[balancer.nodes]]`` table."""
    _check_keys(data, _NODE_KEYS, {"id"}, "node")
    where = f"node {data['id']!r}"
    return Node(
        id=data["id"],
        parent=data.get("parent"),
        limit_a=_opt_float(data.get("limit_a"), where, "limit_a"),
        limit_kw=_opt_float(data.get("limit_kw"), where, "limit_kw"),
        margin_a=_float(data.get("margin_a", 0.0), where, "margin_a"),
        base_load_a=_phase3(data.get("base_load_a", 0.0), where),
        metered=_bool(data.get("metered", False), where, "metered"),
    )


def evse_from_dict(data: Mapping[str, Any]) -> Evse:
    """An :class:`Evse` from one ``[[balancer.evses]]`` table."""
    _check_keys(data, _EVSE_KEYS, {"station_id", "evse_id", "node"}, "EVSE")
    where = f"EVSE ({data['station_id']!r}, {data['evse_id']!r})"
    phases = data.get("phases", 3)
    if not isinstance(phases, int) or isinstance(phases, bool):
        raise TopologyError(f"{where}: phases must be an integer, got {phases!r}")
    evse_id = data["evse_id"]
    if not isinstance(evse_id, int) or isinstance(evse_id, bool):
        raise TopologyError(f"{where}: evse_id must be an integer")
    conn = data.get("phase_connection")
    return Evse(
        station_id=str(data["station_id"]),
        evse_id=evse_id,
        node=str(data["node"]),
        phases=phases,
        phase_connection=None if conn is None else parse_phase_connection(conn, where),
        min_a=_float(data.get("min_a", 6.0), where, "min_a"),
        max_a=_float(data.get("max_a", 32.0), where, "max_a"),
        priority=_float(data.get("priority", 1.0), where, "priority"),
    )


def parse_phase_connection(value: str | Sequence[str | int], where: str = "EVSE") -> tuple[int, ...]:
    """``"L2"``, ``"L2L3L1"``, ``["L2", "L3", "L1"]`` or ``[2, 3, 1]`` -> ``(2, 3, 1)``."""
    if isinstance(value, str):
        text = "".join(ch for ch in value.upper() if ch not in " ,-/")
        parts: list[str | int] = []
        parts.extend(text.split("L")[1:] if text.startswith("L") else text)
    else:
        parts = list(value)
    out: list[int] = []
    for part in parts:
        text = str(part).upper().removeprefix("L")
        if text not in ("1", "2", "3"):
            raise TopologyError(f"{where}: cannot parse phase_connection {value!r}")
        out.append(int(text))
    return tuple(out)


def topology_from_config(table: Mapping[str, Any]) -> Topology:
    """A :class:`Topology` from the ``[balancer]`` config table.

    Expects ``nodes`` and ``evses`` lists of tables (``[[balancer.nodes]]``,
    ``[[balancer.evses]]``) and an optional ``phase_voltage_v`` (default 230).
    Other keys of the table (service and allocation settings) are ignored here.
    """
    nodes = table.get("nodes", [])
    evses = table.get("evses", [])
    if not isinstance(nodes, list) or not isinstance(evses, list):
        raise TopologyError("balancer.nodes and balancer.evses must be lists of tables")
    voltage = _float(table.get("phase_voltage_v", 230.0), "balancer", "phase_voltage_v")
    return Topology(
        [node_from_dict(n) for n in nodes],
        [evse_from_dict(e) for e in evses],
        phase_voltage_v=voltage,
    )


def _check_keys(data: Mapping[str, Any], allowed: set[str], required: set[str], what: str) -> None:
    if not isinstance(data, Mapping):
        raise TopologyError(f"{what} entry must be a table, got {data!r}")
    missing = sorted(required - data.keys())
    if missing:
        raise TopologyError(f"{what} {dict(data)!r}: missing {', '.join(missing)}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise TopologyError(f"{what} {dict(data)!r}: unknown keys {', '.join(unknown)}")


def _float(value: Any, where: str, name: str) -> float:
    if not _finite(value):
        raise TopologyError(f"{where}: {name} must be a number, got {value!r}")
    return float(value)


def _opt_float(value: Any, where: str, name: str) -> float | None:
    return None if value is None else _float(value, where, name)
