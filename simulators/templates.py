"""Station templates: a charger model in a TOML or JSON file, and fleet groups that use it.

A template names the vendor, model and firmware, the EVSEs with their connectors (type
and maximum power), the supported feature profiles and configuration values (schema in
``docs/simulator.md``)::

    vendor = "OpenSim"
    model = "Pillar AC22-2"
    firmware_version = "2.4.1"
    feature_profiles = ["Core", "FirmwareManagement", "RemoteTrigger", "SmartCharging"]
    [configuration]
    LocalAuthListEnabled = "false"
    [[evses]]
    count = 2
    kind = "AC"
    phases = 3
    max_current_a = 32
    connectors = [{ type = "cType2", max_power_kw = 22 }]

A fleet file is a scenario whose ``[[stations]]`` tables give a template (inline name,
bundled name or file relative to the fleet file) and a count. Bundled templates live in
``simulators/templates/stations``.

OCPP numbering: 2.0.1 reports EVSE ``e`` connector ``c`` as such; 1.6 has no EVSEs, so
every connector becomes a connector id of its own, 1..N across the station in EVSE order.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from ocppj.versions import OcppVersion
from simulators.ev import SupplyKind
from simulators.model import ChargerSpec, ConnectorSpec, EvseSpec

CONNECTOR_TYPES = frozenset({
    "cCCS1", "cCCS2", "cG105", "cTesla", "cType1", "cType2", "s309-1P-16A", "s309-1P-32A", "s309-3P-16A",
    "s309-3P-32A", "sBS1361", "sCEE-7-7", "sType2", "sType3", "Other1PhMax16A", "Other1PhOver16A",
    "Other3Ph", "Pan", "wInductive", "wResonant", "Undetermined", "Unknown", "cCHAdeMO",
})
"""OCPP 2.0.1 ``ConnectorEnumType`` values."""
FEATURE_PROFILES = frozenset({"Core", "FirmwareManagement", "LocalAuthListManagement", "Reservation",
                              "SmartCharging", "RemoteTrigger"})
"""OCPP 1.6 feature profiles."""
DEFAULT_PROFILES = ("Core", "FirmwareManagement", "RemoteTrigger", "SmartCharging")


class TemplateError(ValueError):
    """A template or fleet group is invalid; the message says where and why."""


@dataclass(frozen=True, slots=True)
class StationTemplate:
    """A charger model: what every station made from it reports and offers."""

    name: str
    vendor: str
    model: str
    firmware_version: str
    evses: tuple[EvseSpec, ...]
    feature_profiles: tuple[str, ...] = DEFAULT_PROFILES
    configuration: tuple[tuple[str, str], ...] = ()

    @property
    def connectors(self) -> int:
        return sum(len(e.connectors) for e in self.evses)

    def evses_for(self, version: OcppVersion) -> tuple[EvseSpec, ...]:
        """The EVSEs as the charger runs them: 1.6 gets one outlet per connector."""
        if version is OcppVersion.V201:
            return self.evses
        out = []
        for evse in self.evses:
            for connector in evse.connectors:
                power = connector.max_power_w
                if evse.kind is SupplyKind.DC:
                    out.append(_evse(evse, max_power_w=power or evse.max_power_w, connectors=(connector,)))
                else:
                    current = evse.max_current_a if power is None else min(
                        evse.max_current_a, power / (evse.phases * evse.grid_voltage_v))
                    out.append(_evse(evse, max_current_a=current, connectors=(connector,)))
        return tuple(out)

    def charger_spec(
        self, station_id: str, version: OcppVersion, *, serial_number: str, meter_interval_s: float,
        heartbeat_interval_s: float, node: str | None, seed: int, grid_voltage_v: float = 230.0,
    ) -> ChargerSpec:
        """A station of this template (``grid_voltage_v``: the phase voltage of its grid)."""
        config = dict(self.configuration)
        if version is OcppVersion.V16:
            config.setdefault("SupportedFeatureProfiles", ",".join(self.feature_profiles))
        return ChargerSpec(
            station_id=station_id, version=version, vendor=self.vendor,
            evses=tuple(replace(e, grid_voltage_v=grid_voltage_v) for e in self.evses_for(version)),
            model=self.model, serial_number=serial_number, firmware_version=self.firmware_version,
            meter_interval_s=meter_interval_s, heartbeat_interval_s=heartbeat_interval_s, node=node,
            seed=seed, configuration=tuple(config.items()),
        )


def _evse(base: EvseSpec, **changes: Any) -> EvseSpec:
    return replace(base, **changes)


@dataclass(frozen=True, slots=True)
class StationGroup:
    """``count`` stations of one template (a weight when grid nodes pick the templates),
    optionally all of one OCPP version."""

    name: str
    template: StationTemplate
    count: float
    protocol: str | None = None


# --- loading ------------------------------------------------------------------------------

def templates_dir() -> Path:
    """Where the bundled station templates are."""
    return Path(str(resources.files("simulators") / "templates" / "stations"))


def bundled_templates() -> list[str]:
    return sorted(p.stem for p in templates_dir().glob("*.toml"))


def read_data(path: Path) -> dict[str, Any]:
    """A TOML or JSON file (by extension) as a dict; raises TemplateError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise TemplateError(f"{path.name}: not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise TemplateError(f"{path.name}: expected a table/object at the top")
    return data


def load_template(source: str, base: Path | None = None) -> StationTemplate:
    """A template by file (relative to ``base``) or bundled name."""
    path = Path(source)
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.exists() and source in bundled_templates():
        path = templates_dir() / f"{source}.toml"
    if not path.exists():
        raise TemplateError(f"no template {source!r} (a file, or bundled: {', '.join(bundled_templates())})")
    return parse_template(read_data(path), path.stem, where=path.name)


def _take(data: Mapping[str, Any], key: str, kind: type, where: str, default: Any) -> Any:
    value = data.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
        raise TemplateError(f"{where}: {key} must be {kind.__name__}, got {value!r}")
    return value


def _unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(data) - known)
    if extra:
        raise TemplateError(f"{where}: unknown key(s) {', '.join(extra)}")


def parse_template(data: Mapping[str, Any], name: str, *, where: str = "template") -> StationTemplate:
    """A :class:`StationTemplate` from parsed TOML/JSON; raises TemplateError."""
    _unknown(data, {"name", "vendor", "model", "firmware_version", "feature_profiles", "configuration",
                    "evses"}, where)
    evse_tables = _take(data, "evses", list, where, [])
    if not evse_tables:
        raise TemplateError(f"{where}: needs at least one [[evses]]")
    evses: list[EvseSpec] = []
    for i, table in enumerate(evse_tables, start=1):
        evses.extend(_evses(table, f"{where} [[evses]] #{i}"))
    if len(evses) > 32:
        raise TemplateError(f"{where}: at most 32 EVSEs")
    profiles = tuple(_take(data, "feature_profiles", list, where, list(DEFAULT_PROFILES)))
    unknown = [p for p in profiles if p not in FEATURE_PROFILES]
    if unknown:
        raise TemplateError(f"{where}: unknown feature profile(s) {unknown}; "
                            f"known: {', '.join(sorted(FEATURE_PROFILES))}")
    config = _take(data, "configuration", dict, where, {})
    bad = [k for k, v in config.items() if not isinstance(v, str | int | float | bool)]
    if bad:
        raise TemplateError(f"{where} [configuration]: values must be strings, numbers or booleans: {bad}")
    vendor = _take(data, "vendor", str, where, "OpenSim")
    model = _take(data, "model", str, where, "VirtualCharger")
    if not vendor or not model:
        raise TemplateError(f"{where}: vendor and model must not be empty")
    return StationTemplate(
        name=_take(data, "name", str, where, name), vendor=vendor, model=model,
        firmware_version=_take(data, "firmware_version", str, where, "1.0.0"), evses=tuple(evses),
        feature_profiles=profiles,
        configuration=tuple((str(k), _text(v)) for k, v in config.items()),
    )


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _evses(t: Any, where: str) -> list[EvseSpec]:
    if not isinstance(t, Mapping):
        raise TemplateError(f"{where}: expected a table")
    _unknown(t, {"count", "kind", "phases", "max_current_a", "max_power_kw", "connectors"}, where)
    kind_text = _take(t, "kind", str, where, "AC").upper()
    if kind_text not in ("AC", "DC"):
        raise TemplateError(f"{where}: kind must be AC or DC")
    kind = SupplyKind(kind_text)
    count = _take(t, "count", int, where, 1)
    phases = _take(t, "phases", int, where, 3)
    current = _take(t, "max_current_a", float, where, 32.0)
    power_kw = t.get("max_power_kw")
    if power_kw is not None:
        power_kw = _take(t, "max_power_kw", float, where, 0.0)
    connectors = tuple(_connector(c, f"{where} connector #{i}")
                       for i, c in enumerate(_take(t, "connectors", list, where, [{}]), start=1))
    if not 1 <= count <= 32 or phases not in (1, 3) or not 6 <= current <= 500:
        raise TemplateError(f"{where}: need count 1..32, phases 1 or 3, max_current_a 6..500")
    if not 1 <= len(connectors) <= 8:
        raise TemplateError(f"{where}: an EVSE has 1..8 connectors")
    if kind is SupplyKind.DC:
        power_w = (power_kw * 1000.0 if power_kw else
                   max((c.max_power_w or 0.0) for c in connectors)) or 0.0
        if not power_w > 0:
            raise TemplateError(f"{where}: a DC EVSE needs max_power_kw (on it or its connectors)")
        spec = EvseSpec(SupplyKind.DC, 3, 0.0, power_w, connectors=connectors)
    else:
        spec = EvseSpec(SupplyKind.AC, phases, current, connectors=connectors)
    return [spec] * count


def _connector(c: Any, where: str) -> ConnectorSpec:
    if not isinstance(c, Mapping):
        raise TemplateError(f"{where}: expected a table such as {{ type = \"cType2\", max_power_kw = 22 }}")
    _unknown(c, {"type", "max_power_kw"}, where)
    kind = _take(c, "type", str, where, "cType2")
    if kind not in CONNECTOR_TYPES:
        raise TemplateError(f"{where}: unknown connector type {kind!r}; "
                            f"known: {', '.join(sorted(CONNECTOR_TYPES))}")
    power = c.get("max_power_kw")
    if power is not None:
        power = _take(c, "max_power_kw", float, where, 0.0)
        if not power > 0:
            raise TemplateError(f"{where}: max_power_kw must be > 0")
    return ConnectorSpec(kind, None if power is None else power * 1000.0)


def parse_groups(
    tables: list[Any], inline: list[Any], base: Path | None, where: str
) -> tuple[StationGroup, ...]:
    """The ``[[stations]]`` groups of a fleet file; ``inline``: its ``[[templates]]``."""
    named: dict[str, StationTemplate] = {}
    for i, t in enumerate(inline, start=1):
        spot = f"{where} [[templates]] #{i}"
        if not isinstance(t, Mapping) or not isinstance(t.get("name"), str):
            raise TemplateError(f"{spot}: an inline template needs a name")
        named[t["name"]] = parse_template(t, t["name"], where=spot)
    groups = []
    for i, t in enumerate(tables, start=1):
        spot = f"{where} [[stations]] #{i}"
        if not isinstance(t, Mapping):
            raise TemplateError(f"{spot}: expected a table")
        _unknown(t, {"template", "count", "protocol", "name"}, spot)
        source = _take(t, "template", str, spot, "")
        if not source:
            raise TemplateError(f"{spot}: template is required")
        try:
            template = named[source] if source in named else load_template(source, base)
        except TemplateError as exc:
            raise TemplateError(f"{spot}: {exc}") from None
        count = _take(t, "count", float, spot, 1.0)
        protocol = t.get("protocol")
        if protocol is not None and protocol not in ("1.6", "2.0.1"):
            raise TemplateError(f"{spot}: protocol must be '1.6' or '2.0.1', got {protocol!r}")
        if not count > 0:
            raise TemplateError(f"{spot}: count must be > 0")
        groups.append(StationGroup(_take(t, "name", str, spot, template.name), template, count, protocol))
    if len({g.name for g in groups}) != len(groups):
        raise TemplateError(f"{where}: [[stations]] names must be unique (set name = ...)")
    return tuple(groups)


__all__ = [
    "CONNECTOR_TYPES", "FEATURE_PROFILES", "StationGroup", "StationTemplate", "TemplateError",
    "bundled_templates", "load_template", "parse_groups", "parse_template", "read_data", "templates_dir",
]
