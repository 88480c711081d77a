"""Domain events as InfluxDB line-protocol points. Pure: no I/O, no clock.

Every point carries the timestamp of the event it comes from: the CSMS's receive time, never
the station's clock (a station whose clock is wrong would write into the past or the future,
out of the dashboards' time range). The station's own timestamp, where the message had one, is
the integer field ``station_time`` (epoch milliseconds). Writing the same event twice
overwrites instead of duplicating. Tags
are low-cardinality only (station, evse, connector, vendor, model, protocol, feeder,
site, status, event); ids such as transaction ids are fields. The schema is
documented in ``docs/telemetry.md``.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from csms.core.events import (
    Event,
    FeederLimitSignal,
    FeederLoadChanged,
    FeederMeterReading,
    MeterSampled,
    SecurityEventReported,
    StationBooted,
    StationConnected,
    StationDisconnected,
    StatusChanged,
    TransactionEnded,
    TransactionStarted,
)
from csms.core.model import MeterSample, SampledValue, Transaction
from csms.telemetry.outputs import PerEvent, table

FieldValue = float | int | str | bool
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Point:
    """One line-protocol point; ``tags`` sorted by key, empty values left out."""

    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: tuple[tuple[str, FieldValue], ...]
    ts_ns: int

    def line(self) -> str:
        """The point in InfluxDB line protocol (nanosecond precision)."""
        head = _escape_key(self.measurement, measurement=True)
        tags = "".join(f",{_escape_key(k)}={_escape_key(v)}" for k, v in self.tags)
        fields = ",".join(f"{_escape_key(k)}={_field_value(v)}" for k, v in self.fields)
        return f"{head}{tags} {fields} {self.ts_ns}"


@dataclass(frozen=True, slots=True)
class StationTags:
    """What the CSMS knows of a station, as tags (empty when not known yet)."""

    vendor: str = ""
    model: str = ""
    protocol: str = ""


TagLookup = Callable[[str], StationTags]

# --- line protocol --------------------------------------------------------------------------

_KEY_ESCAPES = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", "\n": " ", "\r": " ", "\\": "/"})
_MEASUREMENT_ESCAPES = str.maketrans({",": "\\,", " ": "\\ ", "\n": " ", "\r": " ", "\\": "/"})


_ESCAPED: dict[str, str] = {}  # keys and tag values repeat: escape each once (bounded)


def _escape_key(text: str, *, measurement: bool = False) -> str:
    if measurement:
        return text.translate(_MEASUREMENT_ESCAPES)
    done = _ESCAPED.get(text)
    if done is None:
        if len(_ESCAPED) >= 100_000:
            _ESCAPED.clear()
        done = _ESCAPED[text] = text.translate(_KEY_ESCAPES)
    return done


def _field_value(v: FieldValue) -> str:
    if type(v) is float:
        return repr(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v}i"
    if isinstance(v, float):
        return repr(v)
    escaped = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def to_ns(ts: datetime) -> int:
    """Exact nanoseconds since the epoch (naive times count as UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def make_point(
    measurement: str, tags: Mapping[str, str | int | None], fields: Iterable[tuple[str, FieldValue | None]],
    ts_ns: int,
) -> Point | None:
    """A point with empty tags and missing or non-finite fields dropped; None without fields."""
    clean_tags = tuple(sorted((k, str(v)) for k, v in tags.items() if v is not None and v != ""))
    clean_fields = tuple(
        (k, v) for k, v in fields
        if v is not None and not (isinstance(v, float) and not math.isfinite(v))
    )
    return Point(measurement, clean_tags, clean_fields, ts_ns) if clean_fields else None


def _f(v: float | None) -> float | None:
    """Always a float (a field's type must never change between writes), or None."""
    return None if v is None else float(v)


# --- meter values ---------------------------------------------------------------------------

_BASE_NAMES: dict[str, tuple[str, str]] = {
    "Energy.Active.Import.Register": ("energy", "wh"),
    "Energy.Active.Export.Register": ("energy_export", "wh"),
    "Power.Active.Import": ("power", "w"),
    "Power.Active.Export": ("power_export", "w"),
    "Power.Offered": ("power_offered", "w"),
    "Current.Import": ("current", "a"),
    "Current.Export": ("current_export", "a"),
    "Current.Offered": ("current_offered", "a"),
    "Voltage": ("voltage", "v"),
    "SoC": ("soc", "pct"),
    "Frequency": ("frequency", "hz"),
    "Temperature": ("temperature", "c"),
    "Power.Factor": ("power_factor", ""),
}
_PHASES = {"L1": "l1", "L2": "l2", "L3": "l3", "N": "n", "L1-N": "l1", "L2-N": "l2", "L3-N": "l3",
           "L1-L2": "l1_l2", "L2-L3": "l2_l3", "L3-L1": "l3_l1"}
_UNIT_SUFFIX = {"W": "w", "Wh": "wh", "A": "a", "V": "v", "Percent": "pct", "var": "var", "varh": "varh",
                "VA": "va", "Hz": "hz", "Celsius": "c", "": ""}


def field_name(sv: SampledValue) -> str:
    """``power_w``, ``current_l2_a``, ``voltage_l1_v``, ``temperature_body_c``, ``rpm_rpm``..."""
    return _field_name(sv.measurand, sv.unit, sv.phase, sv.location)


@functools.lru_cache(maxsize=4096)
def _field_name(measurand: str, unit_name: str, phase: str | None, location: str | None) -> str:
    named = _BASE_NAMES.get(measurand)
    if named is None:
        stem = measurand.lower().replace(".", "_").replace(" ", "_")
        named = (stem, _UNIT_SUFFIX.get(unit_name, unit_name.lower()))
    stem, unit = named
    parts = [stem]
    if location not in (None, "Outlet", "EV"):
        parts.append(str(location).lower())
    if phase:
        parts.append(_PHASES.get(phase, phase.lower().replace("-", "_")))
    if unit:
        parts.append(unit)
    return "_".join(parts)


def meter_fields(sample: MeterSample) -> dict[str, FieldValue]:
    """One field per sampled value; total power derived from phases when only those came."""
    fields: dict[str, FieldValue] = {}
    for sv in sample.values:
        fields.setdefault(field_name(sv), float(sv.value))
    if "power_w" not in fields:
        total = sample.power_w
        if total is not None:
            fields["power_w"] = float(total)
    if sample.transaction_id is not None:
        fields["tx_id"] = sample.transaction_id
    return fields


def _station_tags(station_id: str, st: StationTags) -> dict[str, str | int | None]:
    return {"station": station_id, "vendor": st.vendor, "model": st.model, "protocol": st.protocol}


def _context(sample: MeterSample) -> str | None:
    for sv in sample.values:
        if sv.context:
            return sv.context
    return None


def epoch_ms(ts: datetime) -> int:
    """Milliseconds since the epoch (naive times count as UTC): the ``station_time`` field."""
    return to_ns(ts) // 1_000_000


def _distinct_ns(ns: int, event_id: str) -> int:
    """The receive time's nanoseconds (always 000: datetimes stop at microseconds) taken from the
    event id's counter (``csms.core.events`` ends every id with one): consecutive samples of one
    message (several meterValue entries share station, EVSE and context, and may share a
    microsecond) get distinct times, so InfluxDB keeps them all; the same event always makes
    the same point."""
    try:
        n = int(event_id[-12:], 16)
    except ValueError:  # an id made elsewhere
        n = zlib.crc32(event_id.encode())
    return ns + n % 1000


def meter_point(sample: MeterSample, st: StationTags, received: datetime, event_id: str = "") -> Point | None:
    """Measurement ``meter``: one point per sample (station, evse, connector, context), at the
    receive time (made distinct per point, see ``_distinct_ns``); the sample's own time is
    ``station_time``."""
    tags = _station_tags(sample.station_id, st)
    tags.update(evse=sample.evse_id, connector=sample.connector_id, context=_context(sample))
    fields = meter_fields(sample)
    if fields:
        fields["station_time"] = epoch_ms(sample.ts)
    return make_point("meter", tags, fields.items(), _distinct_ns(to_ns(received), event_id))


# --- station events -------------------------------------------------------------------------

STATUS_CODES = {
    "Available": 0, "Preparing": 1, "Charging": 2, "SuspendedEVSE": 3, "SuspendedEV": 4,
    "Finishing": 5, "Reserved": 6, "Unavailable": 7, "Faulted": 8, "Occupied": 9,
}


def status_point(ev: StatusChanged, st: StationTags) -> Point | None:
    """Measurement ``status``: status string plus a numeric ``code`` for timelines."""
    tags = _station_tags(ev.station_id, st)
    tags.update(evse=ev.evse_id, connector=ev.connector_id)
    fields: list[tuple[str, FieldValue | None]] = [
        ("status", ev.status), ("code", STATUS_CODES.get(ev.status, -1)), ("error_code", ev.error_code),
    ]
    return make_point("status", tags, fields, to_ns(ev.ts))


def connection_point(ev: StationConnected | StationDisconnected, st: StationTags) -> Point | None:
    """Measurement ``connection``: ``connected`` 1/0, close code on disconnects."""
    tags = _station_tags(ev.station_id, st)
    tags["protocol"] = ev.protocol.value
    if isinstance(ev, StationConnected):
        fields: list[tuple[str, FieldValue | None]] = [("connected", 1), ("event", "connected")]
    else:
        fields = [("connected", 0), ("event", "disconnected"), ("close_code", ev.code)]
    return make_point("connection", tags, fields, to_ns(ev.ts))


def boot_point(ev: StationBooted, st: StationTags) -> Point | None:
    """Measurement ``boot``: vendor/model as tags, firmware and serial as fields."""
    tags = _station_tags(ev.station_id, StationTags(ev.info.vendor, ev.info.model, st.protocol))
    fields: list[tuple[str, FieldValue | None]] = [
        ("accepted", ev.accepted), ("firmware", ev.info.firmware_version), ("serial", ev.info.serial_number),
    ]
    return make_point("boot", tags, fields, to_ns(ev.ts))


def session_point(ev: TransactionStarted | TransactionEnded, st: StationTags) -> Point | None:
    """Measurement ``session``: tag ``event`` started|ended, at the receive time; the station's
    own start/stop time is ``station_time``."""
    tx: Transaction = ev.transaction
    started = isinstance(ev, TransactionStarted)
    when = tx.started_at if started else tx.stopped_at
    duration = (
        (tx.stopped_at - tx.started_at).total_seconds()
        if tx.stopped_at is not None and tx.started_at is not None else None
    )
    tags = _station_tags(ev.station_id, st)
    tags.update(evse=tx.evse_id, connector=tx.connector_id, event="started" if started else "ended")
    fields: list[tuple[str, FieldValue | None]] = [
        ("count", 1), ("tx_id", tx.tx_id), ("meter_start_wh", _f(tx.meter_start_wh)),
        ("meter_stop_wh", _f(tx.meter_stop_wh)), ("energy_wh", _f(tx.energy_wh)), ("duration_s", duration),
        ("stop_reason", tx.stop_reason), ("flags", ",".join(tx.flags) or None),
        ("station_time", None if when is None else epoch_ms(when)),
    ]
    return make_point("session", tags, fields, to_ns(ev.ts))


def security_point(ev: SecurityEventReported, st: StationTags) -> Point | None:
    """Measurement ``security_event``."""
    fields: list[tuple[str, FieldValue | None]] = [("kind", ev.kind), ("tech_info", ev.tech_info)]
    return make_point("security_event", _station_tags(ev.station_id, st), fields, to_ns(ev.ts))


# --- feeders --------------------------------------------------------------------------------

SiteLookup = Callable[[str], str]


def feeder_load_point(ev: FeederLoadChanged, site: str = "") -> Point | None:
    """Measurement ``feeder``: highest-phase load, allocation, headroom and limit of one node."""
    ev = ev.rounded()
    util = ev.allocated_a / ev.limit_a if ev.limit_a else None
    fields: list[tuple[str, FieldValue | None]] = [
        ("limit_a", _f(ev.limit_a)), ("load_a", float(ev.measured_a)), ("allocated_a", float(ev.allocated_a)),
        ("headroom_a", _f(ev.headroom_a)), ("utilisation", _f(util)), ("evses", len(ev.evses)),
    ]
    tags = {"feeder": ev.node_id, "parent": ev.parent_id, "site": site}
    return make_point("feeder", tags, fields, to_ns(ev.ts))


def allocation_points(ev: FeederLoadChanged, lookup: TagLookup, site: str = "") -> list[Point]:
    """Measurement ``allocation``: the current the balancer gave each EVSE directly under the node."""
    out = []
    for station_id, evse_id, current_a in ev.evses:
        tags = _station_tags(station_id, lookup(station_id))
        tags.update(evse=evse_id, feeder=ev.node_id, site=site)
        p = make_point("allocation", tags, [("limit_a", float(current_a))], to_ns(ev.ts))
        if p is not None:
            out.append(p)
    return out


def feeder_meter_point(ev: FeederMeterReading) -> Point | None:
    """Measurement ``feeder_meter``: an external base-load reading of a node, per phase."""
    fields = [*_phases("current", ev.current_a), ("current_a", float(max(ev.current_a)))]
    return make_point("feeder_meter", {"feeder": ev.node_id}, fields, to_ns(ev.ts))


def feeder_limit_point(ev: FeederLimitSignal) -> Point | None:
    """Measurement ``feeder_limit``: an external limit signal (``cleared`` when the limit is None)."""
    fields: list[tuple[str, FieldValue | None]] = [
        ("limit_a", _f(ev.limit_a)), ("cleared", ev.limit_a is None),
    ]
    return make_point("feeder_limit", {"feeder": ev.node_id}, fields, to_ns(ev.ts))


def _phases(prefix: str, values: tuple[float, float, float]) -> list[tuple[str, FieldValue | None]]:
    return [(f"{prefix}_l{i}_a", float(v)) for i, v in enumerate(values, start=1)]


def feeder_points(ev: FeederLoadChanged, lookup: TagLookup, site: str = "") -> list[Point]:
    """All points of one ``FeederLoadChanged`` (the node and its EVSEs' allocations)."""
    node = feeder_load_point(ev, site)
    return ([node] if node is not None else []) + allocation_points(ev, lookup, site)


# --- dispatch -------------------------------------------------------------------------------

E = TypeVar("E", bound=Event)
EventPoints = Callable[[E, TagLookup, SiteLookup], list[Point]]


def _meter_points(ev: MeterSampled, lookup: TagLookup, site_of: SiteLookup) -> list[Point]:
    point = meter_point(ev.sample, lookup(ev.station_id), ev.ts, ev.event_id)
    return [] if point is None else [point]


def _station_event(build: Callable[[E, StationTags], Point | None]) -> EventPoints[E]:
    """A station event's builder: its station's tags looked up, at most one point."""
    def points(ev: E, lookup: TagLookup, site_of: SiteLookup) -> list[Point]:
        point = build(ev, lookup(ev.station_id))
        return [] if point is None else [point]
    return points


def _feeder_signal(build: Callable[[E], Point | None]) -> EventPoints[E]:
    """A feeder signal's builder: no station tags, at most one point."""
    def points(ev: E, lookup: TagLookup, site_of: SiteLookup) -> list[Point]:
        point = build(ev)
        return [] if point is None else [point]
    return points


def _feeder_load_points(ev: FeederLoadChanged, lookup: TagLookup, site_of: SiteLookup) -> list[Point]:
    return feeder_points(ev, lookup, site_of(ev.node_id))


INFLUX: PerEvent[[TagLookup, SiteLookup], list[Point]] = PerEvent(
    station_connected=_station_event(connection_point),
    station_disconnected=_station_event(connection_point),
    station_booted=_station_event(boot_point),
    status_changed=_station_event(status_point),
    transaction_started=_station_event(session_point),
    transaction_ended=_station_event(session_point),
    meter_sampled=_meter_points,
    security_event_reported=_station_event(security_point),
    message_exchanged=None,
    feeder_load_changed=_feeder_load_points,
    feeder_limit_signal=_feeder_signal(feeder_limit_point),
    feeder_meter_reading=_feeder_signal(feeder_meter_point),
    station_reported=None,
    clock_offset_measured=None,
    command_failed=None,
    alarm_changed=None,
    id_tags_changed=None,
    local_list_synced=None,
    reservation_consumed=None,  # the reservation's own record says it
)
"""The InfluxDB output of every event kind (see ``csms.telemetry.outputs``)."""

_POINTS = table(INFLUX)

POINT_EVENTS: tuple[type[Event], ...] = tuple(_POINTS)
"""The event types :func:`event_points` converts (what the Influx plugin subscribes to)."""


def _no_site(node_id: str) -> str:
    return ""


def event_points(ev: Event, lookup: TagLookup, site_of: SiteLookup = _no_site) -> list[Point]:
    """The points for any telemetry-relevant event ([] for others)."""
    build = _POINTS.get(type(ev))
    return [] if build is None else build(ev, lookup, site_of)


# --- CSMS health ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ActionStats:
    """Messages of one (direction, protocol, action, result) over one health interval."""

    direction: str
    protocol: str
    action: str
    result: str
    count: int
    rate_per_s: float


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Handler latency of one action over one health interval."""

    action: str
    count: int
    mean_ms: float
    p95_ms: float | None


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """What the CSMS reports about itself every health interval (``csms`` measurements)."""

    ts_ns: int
    values: Mapping[str, FieldValue]
    connected_by_protocol: Mapping[str, int]
    connectors_by_status: Mapping[str, int]
    actions: tuple[ActionStats, ...] = ()
    latencies: tuple[LatencyStats, ...] = ()


def health_points(snap: HealthSnapshot) -> list[Point]:
    """``csms`` (totals), ``csms_protocol``, ``csms_status``, ``csms_messages``, ``csms_latency``."""
    out = [make_point("csms", {}, snap.values.items(), snap.ts_ns)]
    out += [make_point("csms_protocol", {"protocol": p}, [("connected", int(n))], snap.ts_ns)
            for p, n in snap.connected_by_protocol.items()]
    out += [make_point("csms_status", {"status": s}, [("connectors", int(n))], snap.ts_ns)
            for s, n in snap.connectors_by_status.items()]
    out += [
        make_point(
            "csms_messages",
            {"direction": a.direction, "protocol": a.protocol, "action": a.action, "result": a.result},
            [("count", int(a.count)), ("rate", float(a.rate_per_s))], snap.ts_ns,
        )
        for a in snap.actions
    ]
    out += [
        make_point(
            "csms_latency", {"action": lat.action},
            [("count", int(lat.count)), ("mean_ms", float(lat.mean_ms)), ("p95_ms", _f(lat.p95_ms))],
            snap.ts_ns,
        )
        for lat in snap.latencies
    ]
    return [p for p in out if p is not None]
