"""Generate the Grafana dashboards (``csms/telemetry/dashboards/*.json``) from one small description.

    python dashboards/generate.py            # rewrite the JSON files
    python dashboards/generate.py --check    # exit 1 when the committed JSON is stale

The JSON files live inside the ``csms`` package so that an installed ``csms dashboards push``
finds them.

Standard library only. Every query is raw InfluxQL over the schema in
``docs/telemetry.md``, so it runs on InfluxDB 1.x, 2.x (DBRP mapping) and 3.x. Panels
use a ``datasource`` variable (any InfluxDB/InfluxQL data source); provisioning
(``deploy/grafana``) makes the CSMS one the default.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "csms" / "telemetry" / "dashboards"
DS = {"type": "influxdb", "uid": "${datasource}"}
SCHEMA_VERSION = 39  # Grafana 10.4 / 11


@dataclass(frozen=True)
class Query:
    """One InfluxQL target; ``alias`` uses Grafana's $tag_x / $col patterns."""

    sql: str
    alias: str = ""
    table: bool = False


@dataclass(frozen=True)
class Panel:
    """A panel: kind is timeseries | stat | state-timeline | table | bargauge."""

    title: str
    kind: str
    queries: tuple[Query, ...]
    unit: str = ""
    width: int = 12
    height: int = 8
    description: str = ""
    stack: bool = False
    time_from: str = ""
    decimals: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Variable:
    """A query template variable over tag values."""

    name: str
    label: str
    query: str
    multi: bool = True


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = ()
    time_from: str = "now-6h"


def q(sql: str, alias: str = "", *, table: bool = False) -> Query:
    return Query(" ".join(sql.split()), alias, table)


# --- the dashboards -------------------------------------------------------------------------

TF = "$timeFilter"
GT = "GROUP BY time($__interval)"

NETWORK = Dashboard(
    "csms-network", "CSMS — Network overview",
    "Stations online by status and protocol, power, energy, sessions and OCPP traffic.",
    (
        Panel("Stations online", "stat", (q(f'SELECT last("stations_connected") FROM "csms" WHERE {TF}'),),
              width=6, height=5),
        Panel("Total power now", "stat", (q(f'SELECT last("power_w") / 1000 FROM "csms" WHERE {TF}'),),
              unit="kwatt", width=6, height=5, decimals=1),
        Panel("Energy today", "stat", (q(
            'SELECT sum("spread") / 1000 FROM (SELECT spread("energy_wh") FROM "meter" '
            f'WHERE {TF} GROUP BY "station", "evse")'),),
            unit="kwatth", width=6, height=5, time_from="now/d", decimals=1,
            description="Sum over EVSEs of the energy register's increase since midnight."),
        Panel("Active sessions", "stat", (q(f'SELECT last("active_sessions") FROM "csms" WHERE {TF}'),),
              width=6, height=5),
        Panel("Stations online by protocol", "timeseries", (q(
            f'SELECT last("connected") FROM "csms_protocol" WHERE {TF} {GT}, "protocol" fill(previous)',
            "$tag_protocol"),), stack=True),
        Panel("Connectors by status", "timeseries", (q(
            f'SELECT last("connectors") FROM "csms_status" WHERE {TF} {GT}, "status" fill(previous)',
            "$tag_status"),), stack=True,
            description="Status of every known connector; stations that are not connected count as Offline."),
        Panel("Total power", "timeseries", (q(
            f'SELECT mean("power_w") / 1000 FROM "csms" WHERE {TF} {GT} fill(previous)', "power"),),
            unit="kwatt"),
        Panel("Power by station", "timeseries", (q(
            f'SELECT mean("power_w") / 1000 FROM "meter" WHERE {TF} {GT}, "station" fill(none)',
            "$tag_station"),), unit="kwatt", stack=True),
        Panel("OCPP messages and errors per second", "timeseries", (
            q(f'SELECT mean("messages_per_s") FROM "csms" WHERE {TF} {GT} fill(previous)', "messages in"),
            q(f'SELECT mean("call_errors_per_s") FROM "csms" WHERE {TF} {GT} fill(previous)', "errors"),
        ), unit="reqps"),
        Panel("Inbound messages by action", "timeseries", (q(
            f'SELECT sum("count") FROM "csms_messages" WHERE "direction" = \'in\' AND {TF} {GT}, "action" '
            'fill(0)', "$tag_action"),), stack=True),
        Panel("Sessions started and ended", "timeseries", (q(
            f'SELECT sum("count") FROM "session" WHERE {TF} {GT}, "event" fill(0)', "$tag_event"),)),
        Panel("Recent sessions", "table", (q(
            'SELECT "tx_id", "energy_wh", "duration_s", "stop_reason" FROM "session" '
            f'WHERE "event" = \'ended\' AND {TF} GROUP BY "station"', table=True),)),
        Panel("Boots by vendor and model", "bargauge", (q(
            f'SELECT count("accepted") FROM "boot" WHERE {TF} GROUP BY "vendor", "model"',
            "$tag_vendor $tag_model"),), width=24, height=6),
    ),
)

FEEDER_FILTER = '"feeder" =~ /^$feeder$/'
FEEDERS = Dashboard(
    "csms-feeders", "CSMS — Feeders",
    "Load vs limit, headroom and allocations per feeder (from the balancer), external meters and limits.",
    (
        Panel("Load, allocation and limit", "timeseries", (
            q(f'SELECT mean("load_a") FROM "feeder" WHERE {FEEDER_FILTER} AND {TF} {GT}, "feeder" '
              'fill(previous)', "$tag_feeder load"),
            q(f'SELECT mean("allocated_a") FROM "feeder" WHERE {FEEDER_FILTER} AND {TF} {GT}, "feeder" '
              'fill(previous)', "$tag_feeder allocated"),
            q(f'SELECT mean("limit_a") FROM "feeder" WHERE {FEEDER_FILTER} AND {TF} {GT}, "feeder" '
              'fill(previous)', "$tag_feeder limit"),
        ), unit="amp", width=24, description="Highest phase, in amperes per phase."),
        Panel("Headroom", "timeseries", (q(
            f'SELECT min("headroom_a") FROM "feeder" WHERE {FEEDER_FILTER} AND {TF} {GT}, "feeder" '
            'fill(previous)', "$tag_feeder"),), unit="amp"),
        Panel("Utilisation now", "bargauge", (q(
            f'SELECT last("utilisation") * 100 FROM "feeder" WHERE {FEEDER_FILTER} AND {TF} '
            'GROUP BY "feeder"',
            "$tag_feeder"),), unit="percent", options={"min": 0, "max": 100}),
        Panel("Allocations per EVSE", "timeseries", (q(
            f'SELECT mean("limit_a") FROM "allocation" WHERE {FEEDER_FILTER} AND {TF} {GT}, "station", '
            '"evse" fill(previous)', "$tag_station/$tag_evse"),), unit="amp"),
        Panel("EVSEs under each feeder", "timeseries", (q(
            f'SELECT last("evses") FROM "feeder" WHERE {FEEDER_FILTER} AND {TF} {GT}, "feeder" '
            'fill(previous)',
            "$tag_feeder"),)),
        Panel("External base-load meters", "timeseries", (
            q(f'SELECT mean("current_l1_a") FROM "feeder_meter" WHERE {FEEDER_FILTER} AND {TF} {GT}, '
              '"feeder" fill(none)', "$tag_feeder L1"),
            q(f'SELECT mean("current_l2_a") FROM "feeder_meter" WHERE {FEEDER_FILTER} AND {TF} {GT}, '
              '"feeder" fill(none)', "$tag_feeder L2"),
            q(f'SELECT mean("current_l3_a") FROM "feeder_meter" WHERE {FEEDER_FILTER} AND {TF} {GT}, '
              '"feeder" fill(none)', "$tag_feeder L3"),
        ), unit="amp"),
        Panel("External limit signals", "timeseries", (q(
            f'SELECT last("limit_a") FROM "feeder_limit" WHERE {FEEDER_FILTER} AND {TF} {GT}, "feeder" '
            'fill(previous)', "$tag_feeder"),), unit="amp"),
    ),
    variables=(Variable("feeder", "Feeder", 'SHOW TAG VALUES FROM "feeder" WITH KEY = "feeder"'),),
)

ST = '"station" =~ /^$station$/'
EV = '"evse" =~ /^$evse$/'
STATION = Dashboard(
    "csms-station", "CSMS — Station detail",
    "One station: power, per-phase current and voltage, SoC, status timeline and sessions.",
    (
        Panel("Power", "timeseries", (q(
            f'SELECT mean("power_w") / 1000 FROM "meter" WHERE {ST} AND {EV} AND {TF} {GT}, "evse" '
            'fill(none)',
            "EVSE $tag_evse"),), unit="kwatt"),
        Panel("Current per phase", "timeseries", tuple(
            q(f'SELECT mean("current_{ph}_a") FROM "meter" WHERE {ST} AND {EV} AND {TF} {GT}, "evse" '
              'fill(none)', f"EVSE $tag_evse {ph.upper()}") for ph in ("l1", "l2", "l3")), unit="amp"),
        Panel("Voltage per phase", "timeseries", tuple(
            q(f'SELECT mean("voltage_{ph}_v") FROM "meter" WHERE {ST} AND {EV} AND {TF} {GT}, "evse" '
              'fill(none)', f"EVSE $tag_evse {ph.upper()}") for ph in ("l1", "l2", "l3")), unit="volt"),
        Panel("State of charge", "timeseries", (q(
            f'SELECT mean("soc_pct") FROM "meter" WHERE {ST} AND {EV} AND {TF} {GT}, "evse" fill(none)',
            "EVSE $tag_evse"),), unit="percent"),
        Panel("Energy register", "timeseries", (q(
            f'SELECT last("energy_wh") / 1000 FROM "meter" WHERE {ST} AND {EV} AND {TF} {GT}, "evse" '
            'fill(none)', "EVSE $tag_evse"),), unit="kwatth"),
        Panel("Balancer limit", "timeseries", (q(
            f'SELECT mean("limit_a") FROM "allocation" WHERE {ST} AND {EV} AND {TF} {GT}, "evse" '
            'fill(previous)', "EVSE $tag_evse"),), unit="amp"),
        Panel("Status timeline", "state-timeline", (q(
            f'SELECT "status" FROM "status" WHERE {ST} AND {TF} GROUP BY "connector"',
            "connector $tag_connector"),), width=24, height=6),
        Panel("Connection", "state-timeline", (q(
            f'SELECT "connected" FROM "connection" WHERE {ST} AND {TF}', "connected"),), width=24, height=4),
        Panel("Sessions", "table", (q(
            'SELECT "tx_id", "energy_wh", "duration_s", "stop_reason" FROM "session" '
            f'WHERE {ST} AND "event" = \'ended\' AND {TF}', table=True),), width=24),
    ),
    variables=(
        Variable("station", "Station", 'SHOW TAG VALUES FROM "meter" WITH KEY = "station"', multi=False),
        Variable("evse", "EVSE", f'SHOW TAG VALUES FROM "meter" WITH KEY = "evse" WHERE {ST}'),
    ),
    time_from="now-3h",
)

HEALTH = Dashboard(
    "csms-health", "CSMS — Health",
    "Handler latency, error rates, telemetry buffer depth, MQTT outbox and process resources.",
    (
        Panel("Handler latency p95 by action", "timeseries", (q(
            f'SELECT max("p95_ms") FROM "csms_latency" WHERE {TF} {GT}, "action" fill(none)',
            "$tag_action"),),
            unit="ms"),
        Panel("Handler latency mean by action", "timeseries", (q(
            f'SELECT mean("mean_ms") FROM "csms_latency" WHERE {TF} {GT}, "action" fill(none)',
            "$tag_action"),), unit="ms"),
        Panel("Errors by action and result", "timeseries", (q(
            f'SELECT sum("count") FROM "csms_messages" WHERE "result" != \'ok\' AND {TF} {GT}, "action", '
            '"result" fill(0)', "$tag_action $tag_result"),), stack=True),
        Panel("Messages per second", "timeseries", (
            q(f'SELECT mean("messages_per_s") FROM "csms" WHERE {TF} {GT} fill(previous)', "in"),
            q(f'SELECT mean("call_errors_per_s") FROM "csms" WHERE {TF} {GT} fill(previous)', "errors"),
        ), unit="reqps"),
        Panel("Telemetry buffer depth", "timeseries", (
            q(f'SELECT max("buffer_points") FROM "csms" WHERE {TF} {GT} fill(previous)', "on disk"),
            q(f'SELECT max("memory_points") FROM "csms" WHERE {TF} {GT} fill(previous)', "in memory"),
        ), description="Points waiting for InfluxDB (they are written when it is reachable again)."),
        Panel("Telemetry points per second", "timeseries", (
            q(f'SELECT non_negative_derivative(last("influx_written"), 1s) FROM "csms" WHERE {TF} {GT}',
              "written"),
            q(f'SELECT non_negative_derivative(last("influx_spooled"), 1s) FROM "csms" WHERE {TF} {GT}',
              "buffered"),
            q(f'SELECT non_negative_derivative(last("influx_dropped"), 1s) FROM "csms" WHERE {TF} {GT}',
              "dropped"),
        )),
        Panel("MQTT outbox", "timeseries", (
            q(f'SELECT max("mqtt_outbox") FROM "csms" WHERE {TF} {GT} fill(previous)', "waiting"),
            q(f'SELECT last("mqtt_connected") FROM "csms" WHERE {TF} {GT} fill(previous)', "connected"),
        )),
        Panel("Process", "timeseries", (
            q(f'SELECT mean("cpu_pct") FROM "csms" WHERE {TF} {GT} fill(previous)', "CPU %"),
            q(f'SELECT mean("rss_mb") FROM "csms" WHERE {TF} {GT} fill(previous)', "RSS MiB"),
        )),
        Panel("Connected stations", "timeseries", (q(
            f'SELECT last("stations_connected") FROM "csms" WHERE {TF} {GT} fill(previous)', "connected"),)),
        Panel("Security events", "table", (q(
            f'SELECT "kind", "tech_info" FROM "security_event" WHERE {TF} GROUP BY "station"', table=True),)),
    ),
)

DASHBOARDS = {
    "network-overview": NETWORK, "feeders": FEEDERS, "station-detail": STATION, "csms-health": HEALTH,
}


# --- rendering ------------------------------------------------------------------------------

def _target(query: Query, ref: str) -> dict[str, Any]:
    t: dict[str, Any] = {"refId": ref, "datasource": DS, "query": query.sql, "rawQuery": True,
                         "resultFormat": "table" if query.table else "time_series"}
    if query.alias:
        t["alias"] = query.alias
    return t


def _field_config(p: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": p.unit} if p.unit else {}
    if p.decimals is not None:
        defaults["decimals"] = p.decimals
    defaults.update({k: v for k, v in p.options.items() if k in ("min", "max")})
    if p.kind == "timeseries":
        defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10 if p.stack else 0,
                              "spanNulls": True,
                              "stacking": {"mode": "normal" if p.stack else "none", "group": "A"}}
    return {"defaults": defaults, "overrides": []}


def _options(p: Panel) -> dict[str, Any]:
    if p.kind == "stat":
        return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    if p.kind == "bargauge":
        return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "orientation": "horizontal", "displayMode": "gradient"}
    if p.kind == "state-timeline":
        return {"mergeValues": True, "showValue": "auto", "rowHeight": 0.9}
    if p.kind == "table":
        return {"showHeader": True, "sortBy": [{"displayName": "Time", "desc": True}]}
    return {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}}


def _layout(panels: tuple[Panel, ...]) -> list[dict[str, int]]:
    out, x, y, row_h = [], 0, 0, 0
    for p in panels:
        if x + p.width > 24:
            x, y, row_h = 0, y + row_h, 0
        out.append({"x": x, "y": y, "w": p.width, "h": p.height})
        x += p.width
        row_h = max(row_h, p.height)
    return out


def _panel(p: Panel, pid: int, pos: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": pid, "type": p.kind, "title": p.title, "datasource": DS, "gridPos": pos,
        "targets": [_target(query, chr(ord("A") + i)) for i, query in enumerate(p.queries)],
        "fieldConfig": _field_config(p), "options": _options(p),
    }
    if p.description:
        out["description"] = p.description
    if p.time_from:
        out["timeFrom"] = p.time_from
    return out


def _variable(v: Variable) -> dict[str, Any]:
    return {
        "name": v.name, "label": v.label, "type": "query", "datasource": DS, "query": v.query,
        "definition": v.query, "refresh": 2, "sort": 1, "multi": v.multi, "includeAll": v.multi,
        "current": {}, "options": [], "hide": 0,
    }


def render(d: Dashboard) -> dict[str, Any]:
    """The Grafana dashboard model (JSON-ready) of ``d``."""
    datasource = {"name": "datasource", "label": "Data source", "type": "datasource", "query": "influxdb",
                  "current": {}, "hide": 0, "refresh": 1}
    return {
        "uid": d.uid, "title": d.title, "description": d.description, "tags": ["csms", "ocpp"],
        "timezone": "browser", "editable": True, "graphTooltip": 1, "refresh": "10s",
        "schemaVersion": SCHEMA_VERSION, "version": 1,
        "time": {"from": d.time_from, "to": "now"},
        "templating": {"list": [datasource, *(_variable(v) for v in d.variables)]},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["csms"], "asDropdown": True, "title": "CSMS dashboards"}],
        "panels": [_panel(p, i + 1, pos) for i, (p, pos) in enumerate(zip(d.panels, _layout(d.panels),
                                                                           strict=True))],
    }


def rendered() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {f"{name}.json": json.dumps(render(d), indent=2) + "\n" for name, d in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only check that the JSON files are current")
    parser.add_argument("--out", type=Path, default=OUT, help="directory to write to")
    args = parser.parse_args(argv)
    stale = []
    for name, text in rendered().items():
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale dashboards: {', '.join(stale)}; run python dashboards/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
