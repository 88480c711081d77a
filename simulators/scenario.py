"""Scenarios: which chargers a fleet has, how they behave, and the grid they hang on.

A scenario is a TOML or JSON file (schema in ``docs/simulator.md``) or one of the bundled
names (``default``, ``smoke``, ``model-city``, ``model-city-fleet``...). Its chargers come from
``[[models]]`` or, in a fleet file, from station templates with counts (``[[stations]]``,
see :mod:`simulators.templates`). Loading validates everything once and
yields a frozen :class:`Scenario`; unknown keys and wrong types raise
:class:`ScenarioError` naming the file, the table and the key.

From a scenario come, deterministically for a seed: the :class:`ChargerSpec` of every
charger (:meth:`Scenario.charger_specs`), the id tags, and the balancer topology as
plain dicts (:func:`balancer_topology`) in the shape of ``csms/balancer/topology.py``.
"""

from __future__ import annotations

import json
import math
import random
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from ocppj.timestamps import parse_datetime
from ocppj.versions import OcppVersion
from simulators.arrivals import CITY_PROFILE, FLAT_PROFILE, ArrivalConfig
from simulators.ev import SupplyKind
from simulators.firmware import FirmwareFaults, FirmwareOptions
from simulators.model import Behaviour, ChargerSpec, EvseSpec, FaultConfig
from simulators.templates import StationGroup, TemplateError, parse_groups

PROTOCOLS = ("1.6", "2.0.1", "mixed")
BUNDLED = ("default", "smoke", "model-city", "demo", "model-city-fleet")
_PROFILES = {"city": CITY_PROFILE, "flat": FLAT_PROFILE}

T = TypeVar("T")


class ScenarioError(ValueError):
    """A scenario file or option is invalid; the message says where and why."""


@dataclass(frozen=True, slots=True)
class ChargerModel:
    """A kind of charger in the fleet, drawn with probability proportional to ``weight``."""

    name: str
    weight: float = 1.0
    vendor: str = "OpenSim"
    model: str = "AC22"
    evses: int = 2
    kind: SupplyKind = SupplyKind.AC
    phases: int = 3
    max_current_a: float = 32.0
    max_power_kw: float | None = None

    def evse_spec(self, grid_voltage_v: float = 230.0) -> EvseSpec:
        if self.kind is SupplyKind.DC:
            return EvseSpec(SupplyKind.DC, 3, 0.0, (self.max_power_kw or 50.0) * 1000.0, grid_voltage_v)
        return EvseSpec(SupplyKind.AC, self.phases, self.max_current_a, grid_voltage_v=grid_voltage_v)


@dataclass(frozen=True, slots=True)
class GridNode:
    """A node of the feeder tree; ``chargers`` is its share of the fleet (0: none)."""

    id: str
    parent: str | None = None
    limit_a: float | None = None
    limit_kw: float | None = None
    margin_a: float = 0.0
    base_load_a: float = 0.0
    chargers: float = 0.0
    models: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario. Override fields with :meth:`with_options`."""

    name: str = "default"
    description: str = ""
    seed: int = 1
    duration_s: float = 60.0
    time_acceleration: float = 1.0
    start_time: datetime | None = None
    clock_skew_s: float = 0.0  # added to every timestamp the chargers send (tests a CSMS's clock handling)
    chargers: int = 10
    protocol: str = "mixed"
    v201_share: float = 0.5
    id_prefix: str = "SIM"
    ramp_up_per_s: float = 100.0
    meter_interval_s: float = 10.0
    heartbeat_interval_s: float = 0.0
    firmware_version: str = "1.0.0"
    models: tuple[ChargerModel, ...] = (ChargerModel("ac22"),)
    id_tags: tuple[str, ...] = tuple(f"SIMTAG{i:04d}" for i in range(1, 101))
    arrivals: ArrivalConfig = field(default_factory=ArrivalConfig)
    behaviour: Behaviour = field(default_factory=Behaviour)
    grid: tuple[GridNode, ...] = ()
    phase_voltage_v: float = 230.0
    firmware_faults: FirmwareFaults | None = None  # given to the chargers picked below
    firmware_fault_share: float = 0.0  # share of chargers picked (by the seed)
    firmware_fault_stations: tuple[str, ...] = ()  # chargers picked by id
    stations: tuple[StationGroup, ...] = ()  # template groups; when set, ``models`` is not used

    def with_options(
        self, *, chargers: int | None = None, protocol: str | None = None, ramp_up_per_s: float | None = None,
        id_prefix: str | None = None, seed: int | None = None, duration_s: float | None = None,
        clock_skew_s: float | None = None, signed_meter_values: bool | None = None,
    ) -> Scenario:
        """This scenario with command-line overrides applied (None: keep)."""
        changes: dict[str, Any] = {
            "chargers": chargers, "protocol": protocol, "ramp_up_per_s": ramp_up_per_s,
            "id_prefix": id_prefix, "seed": seed, "duration_s": duration_s, "clock_skew_s": clock_skew_s,
        }
        if signed_meter_values is not None:
            changes["behaviour"] = replace(self.behaviour, signed_meter_values=signed_meter_values)
        new = replace(self, **{k: v for k, v in changes.items() if v is not None})
        _check_scenario(new, "options")
        return new

    def station_id(self, index: int) -> str:
        """The id of charger ``index`` (0-based): prefix and a zero-padded number."""
        width = max(5, len(str(self.chargers)))
        return f"{self.id_prefix}{index + 1:0{width}d}"

    def charger_specs(self, indices: Iterable[int] | None = None) -> list[ChargerSpec]:
        """The chargers (all, or those at ``indices``); the same for the same seed."""
        nodes = self.node_of_chargers()
        if self.stations:
            return self._template_specs(nodes, range(self.chargers) if indices is None else indices)
        models = {m.name: m for m in self.models}
        out = []
        for index in range(self.chargers) if indices is None else indices:
            rng = random.Random(f"{self.seed}/{index}")
            node = nodes[index]
            allowed = self.models
            if node is not None and node.models:
                allowed = tuple(models[name] for name in node.models)
            model = rng.choices(allowed, [m.weight for m in allowed])[0]
            out.append(ChargerSpec(
                station_id=self.station_id(index),
                version=self._version(rng),
                evses=(model.evse_spec(self.phase_voltage_v),) * model.evses,
                vendor=model.vendor, model=model.model,
                serial_number=f"{model.name.upper()}-{index + 1:06d}",
                firmware_version=self.firmware_version,
                meter_interval_s=self.meter_interval_s,
                heartbeat_interval_s=self.heartbeat_interval_s,
                node=None if node is None else node.id,
                seed=rng.getrandbits(32),
                firmware_faults=self._firmware_faults(index),
            ))
        return out

    def _firmware_faults(self, index: int) -> FirmwareFaults | None:
        """The firmware faults of charger ``index``: picked by id or by its own draw (the seed's)."""
        if self.firmware_faults is None:
            return None
        picked = (self.station_id(index) in self.firmware_fault_stations
                  or random.Random(f"{self.seed}/{index}/firmware").random() < self.firmware_fault_share)
        return self.firmware_faults if picked else None
    def _template_specs(self, nodes: list[GridNode | None], indices: Iterable[int]) -> list[ChargerSpec]:
        """Chargers from station templates: the groups' counts, apportioned to the fleet size, as
        contiguous id ranges; on grid nodes that name groups, drawn by count among those."""
        groups = {g.name: g for g in self.stations}
        exact: list[StationGroup] = []
        for group, n in zip(self.stations, apportion(self.chargers, [g.count for g in self.stations]),
                            strict=True):
            exact.extend([group] * n)
        out = []
        for index in indices:
            rng = random.Random(f"{self.seed}/{index}")
            node = nodes[index]
            group = exact[index]
            if node is not None and node.models:
                allowed = [groups[name] for name in node.models]
                group = rng.choices(allowed, [g.count for g in allowed])[0]
            version = self._version(rng) if group.protocol is None else OcppVersion(f"ocpp{group.protocol}")
            spec = group.template.charger_spec(
                self.station_id(index), version, serial_number=f"{group.name.upper()[:12]}-{index + 1:06d}",
                meter_interval_s=self.meter_interval_s, heartbeat_interval_s=self.heartbeat_interval_s,
                node=None if node is None else node.id, seed=rng.getrandbits(32),
                grid_voltage_v=self.phase_voltage_v,
            )
            out.append(replace(spec, firmware_faults=self._firmware_faults(index)))
        return out

    def _version(self, rng: random.Random) -> OcppVersion:
        share = {"1.6": 0.0, "2.0.1": 1.0}.get(self.protocol, self.v201_share)
        return OcppVersion.V201 if rng.random() < share else OcppVersion.V16

    def node_of_chargers(self) -> list[GridNode | None]:
        """The grid node of each charger: nodes get shares of the fleet by their weight
        (largest remainder), in file order, as contiguous id ranges."""
        hosts = [n for n in self.grid if n.chargers > 0]
        if not hosts:
            return [None] * self.chargers
        counts = apportion(self.chargers, [n.chargers for n in hosts])
        out: list[GridNode | None] = []
        for node, count in zip(hosts, counts, strict=True):
            out.extend([node] * count)
        return out


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder)."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def balancer_topology(scenario: Scenario) -> dict[str, Any]:
    """The scenario's feeder tree for the CSMS balancer, as plain data.

    ``{"phase_voltage_v": 230.0, "nodes": [{"id", "parent", "limit_a", "limit_kw",
    "margin_a", "base_load_a"}...], "evses": [{"station_id", "evse_id", "node",
    "phases", "min_a", "max_a"}...]}``, which ``topology_from_config`` of
    ``csms.balancer.topology`` accepts (the ``[balancer]`` table). DC EVSEs are
    three-phase loads whose ``max_a`` is their power at ``phase_voltage_v``.
    """
    nodes = []
    for n in scenario.grid:
        node: dict[str, Any] = {"id": n.id, "parent": n.parent}
        for key in ("limit_a", "limit_kw"):
            if getattr(n, key) is not None:
                node[key] = getattr(n, key)
        if n.margin_a:
            node["margin_a"] = n.margin_a
        if n.base_load_a:
            node["base_load_a"] = n.base_load_a
        nodes.append(node)
    evses = []
    for spec in scenario.charger_specs():
        if spec.node is None:
            continue
        for evse_id, evse in enumerate(spec.evses, start=1):
            dc = evse.kind is SupplyKind.DC
            evses.append({
                "station_id": spec.station_id, "evse_id": evse_id, "node": spec.node,
                "phases": evse.grid_phases, "min_a": 0.0 if dc else 6.0,
                "max_a": round(evse.rated_current_a, 1),
            })
    return {"phase_voltage_v": scenario.phase_voltage_v, "nodes": nodes, "evses": evses}


# --- loading ------------------------------------------------------------------------------


def bundled_path(name: str) -> Path:
    """The file of a bundled scenario (fleet files are with the station templates)."""
    scenarios = Path(str(resources.files("simulators") / "scenarios" / f"{name}.toml"))
    if scenarios.exists():
        return scenarios
    return Path(str(resources.files("simulators") / "templates" / f"{name}.toml"))


def load_scenario(source: str | Path | None = None) -> Scenario:
    """Load a scenario file, a bundled name, or (None) the default scenario."""
    if source is None:
        source = "default"
    path = Path(source)
    if str(source) in BUNDLED and not path.exists():
        path = bundled_path(str(source))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        names = ", ".join(BUNDLED)
        raise ScenarioError(f"cannot read scenario {str(source)!r}: {exc.strerror} "
                            f"(bundled scenarios: {names})") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ScenarioError(f"{path.name}: not valid {kind}: {exc}") from None
    return parse_scenario(data, path.name, base=path.parent)


def parse_scenario(data: Mapping[str, Any], where: str = "scenario", *, base: Path | None = None) -> Scenario:
    """A :class:`Scenario` from parsed TOML or JSON; raises ScenarioError. ``base``: where
    template files of ``[[stations]]`` are looked up (the scenario file's folder)."""
    top = _Table(data, where)
    fleet = top.table("fleet")
    charger = top.table("charger")
    defaults = Scenario()
    start = top.get("start_time", str, "")
    grid = top.table("grid")
    nodes = _grid_nodes(grid, where)
    weights = sum(n.chargers for n in nodes)
    firmware, faults, share, picked = _firmware(top.table("firmware"))
    top.used.update(("stations", "templates"))
    try:
        stations = parse_groups(_array(top, "stations"), _array(top, "templates"), base, where)
    except TemplateError as exc:
        raise ScenarioError(str(exc)) from None
    if not weights and stations:
        weights = sum(g.count for g in stations)
    scenario = Scenario(
        name=top.get("name", str, Path(where).stem),
        description=top.get("description", str, ""),
        seed=top.get("seed", int, defaults.seed),
        duration_s=top.number("duration_s", defaults.duration_s),
        time_acceleration=top.number("time_acceleration", 1.0),
        start_time=_start_time(start, where) if start else None,
        clock_skew_s=top.number("clock_skew_s", 0.0),
        chargers=fleet.get("chargers", int, round(weights) if weights else defaults.chargers),
        protocol=fleet.get("protocol", str, defaults.protocol),
        v201_share=fleet.number("v201_share", defaults.v201_share),
        id_prefix=fleet.get("id_prefix", str, defaults.id_prefix),
        ramp_up_per_s=fleet.number("ramp_up_per_s", defaults.ramp_up_per_s),
        behaviour=replace(_behaviour(fleet, top.table("faults")), firmware=firmware),
        firmware_faults=faults, firmware_fault_share=share, firmware_fault_stations=picked,
        meter_interval_s=charger.number("meter_interval_s", defaults.meter_interval_s),
        heartbeat_interval_s=charger.number("heartbeat_interval_s", 0.0),
        firmware_version=charger.get("firmware_version", str, defaults.firmware_version),
        models=_models(top.tables("models"), where) or defaults.models,
        id_tags=_id_tags(top.table("id_tags")),
        arrivals=_arrivals(top.table("arrivals")),
        grid=nodes,
        phase_voltage_v=grid.number("phase_voltage_v", 230.0),
        stations=stations,
    )
    for table in (top, fleet, charger, grid):
        table.done()
    _check_scenario(scenario, where)
    return scenario


def _check_scenario(s: Scenario, where: str) -> None:
    problems = []
    if s.protocol not in PROTOCOLS:
        problems.append(f"protocol must be one of {', '.join(PROTOCOLS)}, got {s.protocol!r}")
    if not 1 <= s.chargers <= 1_000_000:
        problems.append(f"chargers must be 1..1000000, got {s.chargers}")
    if s.ramp_up_per_s <= 0 or s.meter_interval_s <= 0 or s.time_acceleration <= 0:
        problems.append("ramp_up_per_s, meter_interval_s and time_acceleration must be > 0")
    if not math.isfinite(s.clock_skew_s) or abs(s.clock_skew_s) > 10 * 365 * 86_400:
        problems.append("clock_skew_s must be a finite number of seconds within ten years")
    if s.duration_s < 0 or s.heartbeat_interval_s < 0:
        problems.append("duration_s and heartbeat_interval_s must be >= 0")
    if not 0 <= s.v201_share <= 1:
        problems.append("v201_share must be in [0, 1]")
    if not s.id_prefix or len(s.id_prefix) + max(5, len(str(s.chargers))) > 48 or "/" in s.id_prefix:
        problems.append("id_prefix must be non-empty, without '/', short enough for 48-character ids")
    if not s.id_tags:
        problems.append("id_tags must not be empty")
    names = {g.name for g in s.stations} if s.stations else {m.name for m in s.models}
    ids = {n.id for n in s.grid}
    for n in s.grid:
        if n.parent is not None and n.parent not in ids:
            problems.append(f"grid node {n.id!r}: unknown parent {n.parent!r}")
        for model in n.models:
            if model not in names:
                problems.append(f"grid node {n.id!r}: unknown model {model!r}")
    if len(ids) != len(s.grid):
        problems.append("grid node ids must be unique")
    if problems:
        raise ScenarioError(f"{where}: " + "; ".join(problems))


def _array(top: _Table, key: str) -> list[Any]:
    items = top.data.get(key, [])
    if not isinstance(items, list):
        raise ScenarioError(f"{top.where}: {key} must be an array of tables ([[{key}]])")
    return items


class _Table:
    """Typed, strict access to one TOML table: unknown keys are errors."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ScenarioError(f"{where}: expected a table, got {type(data).__name__}")
        self.data = data
        self.where = where
        self.used: set[str] = set()

    def get(self, key: str, kind: type[T], default: T) -> T:
        self.used.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ScenarioError(f"{self.where}: {key} must be {kind.__name__}, got {value!r}")
        return value

    def number(self, key: str, default: float) -> float:
        return self.get(key, float, float(default))

    def opt_number(self, key: str) -> float | None:
        if key not in self.data:
            self.used.add(key)
            return None
        return self.number(key, 0.0)

    def pair(self, key: str, default: tuple[float, float]) -> tuple[float, float]:
        self.used.add(key)
        value = self.data.get(key, list(default))
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
                or value[0] > value[1] or value[0] < 0):
            raise ScenarioError(f"{self.where}: {key} must be [min, max] with 0 <= min <= max, got {value!r}")
        return float(value[0]), float(value[1])

    def table(self, key: str) -> _Table:
        self.used.add(key)
        return _Table(self.data.get(key, {}), f"{self.where} [{key}]")

    def tables(self, key: str) -> list[_Table]:
        self.used.add(key)
        items = self.data.get(key, [])
        if not isinstance(items, list):
            raise ScenarioError(f"{self.where}: {key} must be an array of tables ([[{key}]])")
        return [_Table(item, f"{self.where} [[{key}]] #{i + 1}") for i, item in enumerate(items)]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ScenarioError(f"{self.where}: unknown key(s) {', '.join(unknown)}")


def _start_time(text: str, where: str) -> datetime:
    """``"now"``, ``"HH:MM"`` (today, UTC) or an ISO 8601 datetime."""
    if text == "now":
        return datetime.now(UTC)
    try:
        if len(text) <= 5 and ":" in text:
            return datetime.combine(datetime.now(UTC).date(), time.fromisoformat(text), UTC)
        return parse_datetime(text)
    except ValueError:
        raise ScenarioError(f"{where}: start_time {text!r} is not 'now', 'HH:MM' or ISO 8601") from None


FIRMWARE_FAULTS = ("download", "install", "reject")


def _firmware(t: _Table) -> tuple[FirmwareOptions, FirmwareFaults | None, float, tuple[str, ...]]:
    """``[firmware]``: step_s, max_bytes, timeout_s; fault (download | install | reject) given to
    ``fault_share`` of the chargers and to those in ``fault_stations``, ``fault_first_attempt_only``."""
    d = FirmwareOptions()
    options = FirmwareOptions(step_s=t.number("step_s", d.step_s),
                              max_bytes=t.get("max_bytes", int, d.max_bytes),
                              timeout_s=t.number("timeout_s", d.timeout_s))
    fault = t.get("fault", str, "")
    share = t.number("fault_share", 0.0)
    stations = t.get("fault_stations", list, [])
    once = t.get("fault_first_attempt_only", bool, False)
    t.done()
    if options.step_s < 0 or options.max_bytes < 1 or options.timeout_s <= 0:
        raise ScenarioError(f"{t.where}: step_s must be >= 0, max_bytes >= 1 and timeout_s > 0")
    if fault and fault not in FIRMWARE_FAULTS:
        raise ScenarioError(f"{t.where}: fault must be one of {', '.join(FIRMWARE_FAULTS)}, got {fault!r}")
    if not 0 <= share <= 1 or not all(isinstance(s, str) for s in stations):
        raise ScenarioError(f"{t.where}: fault_share must be in [0, 1] and fault_stations a list of ids")
    faults = None
    if fault:
        faults = FirmwareFaults(download=fault == "download", install=fault == "install",
                                reject=fault == "reject", first_attempt_only=once)
    return options, faults, share, tuple(stations)


def _behaviour(fleet: _Table, faults: _Table) -> Behaviour:
    d = Behaviour()
    offline = faults.pair("offline_s", (30.0, 120.0))
    connector = faults.pair("connector_fault_s", (30.0, 300.0))
    fault_config = FaultConfig(
        drop_per_hour=faults.number("drop_per_hour", 0.0),
        offline_per_hour=faults.number("offline_per_hour", 0.0),
        offline_min_s=offline[0], offline_max_s=offline[1],
        connector_fault_per_hour=faults.number("connector_fault_per_hour", 0.0),
        connector_fault_min_s=connector[0], connector_fault_max_s=connector[1],
        duplicate_per_hour=faults.number("duplicate_per_hour", 0.0),
        upload_failure_share=faults.number("upload_failure_share", 0.0),
    )
    faults.done()
    if not 0 <= fault_config.upload_failure_share <= 1:
        raise ScenarioError(f"{faults.where}: upload_failure_share must be between 0 and 1")
    if min(fault_config.drop_per_hour, fault_config.offline_per_hour, fault_config.duplicate_per_hour,
           fault_config.connector_fault_per_hour) < 0:
        raise ScenarioError(f"{faults.where}: rates must be >= 0")
    behaviour = Behaviour(
        call_timeout_s=fleet.number("call_timeout_s", d.call_timeout_s),
        open_timeout_s=fleet.number("open_timeout_s", d.open_timeout_s),
        ws_ping_interval_s=fleet.number("ws_ping_interval_s", d.ws_ping_interval_s),
        boot_on_reconnect=fleet.get("boot_on_reconnect", bool, d.boot_on_reconnect),
        end_transactions_on_stop=fleet.get("end_transactions_on_stop", bool, d.end_transactions_on_stop),
        stop_grace_s=fleet.number("stop_grace_s", d.stop_grace_s),
        reconnect_base_s=fleet.number("reconnect_base_s", d.reconnect_base_s),
        reconnect_max_s=fleet.number("reconnect_max_s", d.reconnect_max_s),
        faults=fault_config,
        signed_meter_values=fleet.get("signed_meter_values", bool, d.signed_meter_values),
    )
    if min(behaviour.call_timeout_s, behaviour.open_timeout_s, behaviour.reconnect_base_s) <= 0:
        raise ScenarioError(f"{fleet.where}: timeouts and reconnect_base_s must be > 0")
    return behaviour


def _models(tables: list[_Table], where: str) -> tuple[ChargerModel, ...]:
    models: list[ChargerModel] = []
    for t in tables:
        kind_text = t.get("kind", str, "AC").upper()
        if kind_text not in ("AC", "DC"):
            raise ScenarioError(f"{t.where}: kind must be AC or DC")
        kind = SupplyKind(kind_text)
        model = ChargerModel(
            name=t.get("name", str, f"model{len(models) + 1}"),
            weight=t.number("weight", 1.0),
            vendor=t.get("vendor", str, "OpenSim"),
            model=t.get("model", str, "AC22" if kind is SupplyKind.AC else "DC50"),
            evses=t.get("evses", int, 2 if kind is SupplyKind.AC else 1),
            kind=kind,
            phases=t.get("phases", int, 3),
            max_current_a=t.number("max_current_a", 32.0),
            max_power_kw=t.opt_number("max_power_kw"),
        )
        t.done()
        if model.weight <= 0 or not 1 <= model.evses <= 8 or model.phases not in (1, 3):
            raise ScenarioError(f"{t.where}: need weight > 0, evses 1..8 and phases 1 or 3")
        if kind is SupplyKind.DC and not model.max_power_kw:
            raise ScenarioError(f"{t.where}: a DC model needs max_power_kw")
        if not 6 <= model.max_current_a <= 500:
            raise ScenarioError(f"{t.where}: max_current_a must be 6..500")
        models.append(model)
    if len({m.name for m in models}) != len(models):
        raise ScenarioError(f"{where}: model names must be unique")
    return tuple(models)


def _id_tags(t: _Table) -> tuple[str, ...]:
    listed = t.get("list", list, [])
    prefix = t.get("prefix", str, "SIMTAG")
    count = t.get("count", int, 0 if listed else 100)
    t.done()
    if not all(isinstance(tag, str) and 0 < len(tag) <= 20 for tag in listed):
        raise ScenarioError(f"{t.where}: list must hold strings of 1-20 characters (1.6 IdToken)")
    if count < 0 or len(prefix) + len(str(count)) > 20:
        raise ScenarioError(f"{t.where}: count must be >= 0 and prefix + number at most 20 characters")
    width = max(4, len(str(count)))
    return tuple(listed) + tuple(f"{prefix}{i:0{width}d}" for i in range(1, count + 1))


def _arrivals(t: _Table) -> ArrivalConfig:
    d = ArrivalConfig()
    profile_value = t.data.get("daily_profile", "city")
    t.used.add("daily_profile")
    if isinstance(profile_value, str):
        if profile_value not in _PROFILES:
            raise ScenarioError(f"{t.where}: daily_profile must be 'city', 'flat' or 24 numbers")
        profile = _PROFILES[profile_value]
    elif isinstance(profile_value, list) and all(isinstance(v, int | float) for v in profile_value):
        profile = tuple(float(v) for v in profile_value)
    else:
        raise ScenarioError(f"{t.where}: daily_profile must be 'city', 'flat' or 24 numbers")
    try:
        cfg = ArrivalConfig(
            first_within_wall_s=t.number("first_within_s", d.first_within_wall_s),
            first_share=t.number("first_share", d.first_share),
            sessions_per_day=t.number("sessions_per_day", d.sessions_per_day),
            daily_profile=profile,
            dwell_mean_s=t.number("dwell_mean_s", d.dwell_mean_s),
            dwell_min_s=t.number("dwell_min_s", d.dwell_min_s),
            dwell_max_s=t.number("dwell_max_s", d.dwell_max_s),
            dwell_sigma=t.number("dwell_sigma", d.dwell_sigma),
            energy_kwh_mean=t.number("energy_kwh_mean", d.energy_kwh_mean),
            energy_kwh_min=t.number("energy_kwh_min", d.energy_kwh_min),
            energy_kwh_max=t.number("energy_kwh_max", d.energy_kwh_max),
            energy_sigma=t.number("energy_sigma", d.energy_sigma),
        )
    except ValueError as exc:
        raise ScenarioError(f"{t.where}: {exc}") from None
    t.done()
    return cfg


def _grid_nodes(grid: _Table, where: str) -> tuple[GridNode, ...]:
    nodes = [_node(t) for t in grid.tables("nodes")]
    generate = grid.data.get("generate")
    grid.used.add("generate")
    if generate is not None:
        nodes.extend(generate_city(_Table(generate, f"{grid.where} [generate]")))
    return tuple(nodes)


def _node(t: _Table) -> GridNode:
    if "id" not in t.data:
        raise ScenarioError(f"{t.where}: id is required")
    models = t.get("models", list, [])
    node = GridNode(
        id=t.get("id", str, ""), parent=t.get("parent", str, "") or None,
        limit_a=t.opt_number("limit_a"), limit_kw=t.opt_number("limit_kw"),
        margin_a=t.number("margin_a", 0.0), base_load_a=t.number("base_load_a", 0.0),
        chargers=t.number("chargers", 0.0), models=tuple(str(m) for m in models),
    )
    t.done()
    if node.chargers < 0 or node.margin_a < 0 or node.base_load_a < 0:
        raise ScenarioError(f"{t.where}: chargers, margin_a and base_load_a must be >= 0")
    return node


def generate_city(t: _Table) -> list[GridNode]:
    """A city grid from a few parameters: substations -> MV feeders -> LV transformer areas
    (each hosting a random number of chargers), plus bus/fleet depots on some feeders."""
    rng = random.Random(t.get("seed", int, 42))
    substations = t.get("substations", int, 4)
    feeders = t.get("feeders_per_substation", int, 8)
    areas = t.get("areas_per_feeder", int, 4)
    per_area = t.pair("chargers_per_area", (10.0, 40.0))
    area_kva = t.pair("area_kva", (400.0, 630.0))
    base_share = t.number("area_base_load_share", 0.5)
    substation_kw = t.number("substation_limit_kw", 40_000.0)
    feeder_kw = t.number("feeder_limit_kw", 6_000.0)
    depots = t.get("depots", int, 4)
    depot_chargers = t.number("depot_chargers", 20.0)
    depot_kva = t.number("depot_kva", 1_000.0)
    area_models = tuple(str(m) for m in t.get("area_models", list, []))
    depot_models = tuple(str(m) for m in t.get("depot_models", list, []))
    voltage = t.number("phase_voltage_v", 230.0)
    t.done()
    if min(substations, feeders, areas) < 1 or depots < 0 or not 0 <= base_share < 1:
        raise ScenarioError(f"{t.where}: need >= 1 substation/feeder/area, depots >= 0, "
                            "0 <= area_base_load_share < 1")
    nodes = [GridNode("city")]
    feeder_ids = []
    for s in range(1, substations + 1):
        sub_id = f"S{s}"
        nodes.append(GridNode(sub_id, "city", limit_kw=substation_kw))
        for f in range(1, feeders + 1):
            feeder_id = f"{sub_id}-F{f}"
            feeder_ids.append(feeder_id)
            nodes.append(GridNode(feeder_id, sub_id, limit_kw=feeder_kw))
            for a in range(1, areas + 1):
                limit_a = round(rng.uniform(*area_kva) * 1000 / (3 * voltage))
                nodes.append(GridNode(
                    f"{feeder_id}-T{a}", feeder_id, limit_a=limit_a, margin_a=round(limit_a * 0.05),
                    base_load_a=round(limit_a * base_share), chargers=round(rng.uniform(*per_area)),
                    models=area_models,
                ))
    for d, feeder_id in enumerate(rng.sample(feeder_ids, min(depots, len(feeder_ids))), start=1):
        limit_a = round(depot_kva * 1000 / (3 * voltage))
        nodes.append(GridNode(f"{feeder_id}-D{d}", feeder_id, limit_a=limit_a, margin_a=round(limit_a * 0.05),
                              chargers=depot_chargers, models=depot_models))
    return nodes


def scenario_summary(s: Scenario) -> str:
    """One line about a scenario, for ``csms-sim scenarios`` and logs."""
    templates = f", templates {'/'.join(g.name for g in s.stations)}" if s.stations else ""
    return (f"{s.name}: {s.chargers} chargers{templates}, protocol {s.protocol}, {len(s.grid)} grid nodes, "
            f"x{s.time_acceleration:g} time, {s.duration_s:g} s - {s.description}")
