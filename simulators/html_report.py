"""The HTML load-test report: one self-contained page (inline CSS and SVG, no script, no
external resource) drawn from a ``csms-sim-report/1`` dict.

Plots over time from the report's ``timeline``: connected chargers, calls/s, latency
p50/p95/p99 of each interval and errors by kind per interval. Tables: the run's
parameters, the thresholds verdict, totals and latency by action. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

WIDTH, HEIGHT = 640, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 28, 48
_LEGEND_ROW = 14
COLORS = ("#1f77b4", "#ff7f0e", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
MAX_ERROR_KINDS = 6  # the most frequent kinds get a line each; the rest add up to "other"

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px auto; max-width: 1340px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
.verdict { padding: 8px 12px; border-radius: 4px; font-weight: 600; display: inline-block; }
.pass { background: #e6f4ea; color: #137333; } .fail { background: #fce8e6; color: #a50e0e; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; border: 1px solid #ddd; border-radius: 4px; padding: 4px; }
table { border-collapse: collapse; margin-top: 6px; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 3px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.failed { color: #a50e0e; font-weight: 600; }
table.totals td, table.params td, table.params th { text-align: left; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
"""


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``top`` (``top`` <= 0: 0..1)."""
    if not top > 0 or not math.isfinite(top):
        top = 1.0
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value / 1000:g}k" if value % 1000 == 0 else f"{value:,.0f}"
    return f"{value:.3g}"


def svg_chart(
    title: str, unit: str, xs: Sequence[float], series: Sequence[tuple[str, Sequence[float]]]
) -> str:
    """A line chart as an inline ``<svg>``: one polyline per series over ``xs`` (seconds)."""
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    legend = _legend([name for name, _ in series], plot_w)
    height = HEIGHT + _LEGEND_ROW * max((row for _, row in legend), default=0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" '
             f'data-points="{len(xs)}" data-series="{len(series)}">',
             f'<text x="{_LEFT}" y="16" style="font-weight:600;font-size:13px">{escape(title)}'
             f'{f" ({escape(unit)})" if unit else ""}</text>']
    if not xs or not series:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data</text></svg>')
        return "".join(parts)
    x0, x1 = min(0.0, min(xs)), max(xs)  # from the start of the run
    x_span = (x1 - x0) or 1.0
    y_ticks = nice_ticks(max((max(values, default=0.0) for _, values in series), default=0.0))
    y_top = y_ticks[-1]

    def px(x: float) -> float:
        return _LEFT + (x - x0) / x_span * plot_w

    def py(y: float) -> float:
        return _TOP + plot_h - y / y_top * plot_h

    for tick in y_ticks:
        y = py(tick)
        parts.append(f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>')
    for tick in nice_ticks(x_span):
        if tick > x_span + 1e-9:
            break
        x = px(x0 + tick)
        parts.append(f'<text x="{x:.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle">'
                     f'{_fmt(x0 + tick)}</text>')
    parts.append(f'<text x="{WIDTH - _RIGHT}" y="{_TOP + plot_h + 30}" text-anchor="end">seconds</text>'
                 f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
                 'stroke="#bbb"/>')
    for i, ((name, values), (legend_x, row)) in enumerate(zip(series, legend, strict=True)):
        color = COLORS[i % len(COLORS)]
        points = " ".join(f"{px(x):.1f},{py(max(0.0, y)):.1f}" for x, y in zip(xs, values, strict=False))
        parts.append(f'<polyline class="series" data-name="{escape(name)}" fill="none" stroke="{color}" '
                     f'stroke-width="1.6" points="{points}"/>')
        if len(xs) == 1:
            parts.append(f'<circle cx="{px(xs[0]):.1f}" cy="{py(max(0.0, values[0])):.1f}" r="3" '
                         f'fill="{color}"/>')
        y = _TOP + plot_h + 42 + _LEGEND_ROW * row
        parts.append(f'<rect x="{legend_x}" y="{y - 4}" width="10" height="3" fill="{color}"/>'
                     f'<text x="{legend_x + 14}" y="{y}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _legend(names: Sequence[str], width: float) -> list[tuple[float, int]]:
    """(x, row) of each legend entry: left to right, wrapping at ``width``."""
    out = []
    x, row = float(_LEFT), 0
    for name in names:
        size = 22 + 6.5 * len(name)
        if x > _LEFT and x + size > _LEFT + width:
            x, row = float(_LEFT), row + 1
        out.append((x, row))
        x += size
    return out


def error_series(timeline: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[float]]]:
    """Errors per interval by kind: the most frequent kinds, then ``other``."""
    totals: Counter[str] = Counter()
    for row in timeline:
        totals.update(row.get("errors_by_kind", {}))
    if not totals:
        return [("errors", [0.0] * len(timeline))]
    top = [kind for kind, _ in totals.most_common(MAX_ERROR_KINDS)]
    out = [(kind, [float(row.get("errors_by_kind", {}).get(kind, 0)) for row in timeline]) for kind in top]
    if len(totals) > len(top):
        out.append(("other", [float(sum(n for k, n in row.get("errors_by_kind", {}).items() if k not in top))
                              for row in timeline]))
    return out


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], *, cls: str = "") -> str:
    th = "".join(f"<th>{escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _cell(value: Any) -> str:
    if isinstance(value, tuple):  # (text, css class)
        return f'<td class="{escape(value[1])}">{escape(str(value[0]))}</td>'
    return f"<td>{escape(str(value))}</td>"


def _thresholds(data: Mapping[str, Any]) -> str:
    verdicts = data.get("thresholds")
    if not verdicts:
        return "<p>No thresholds were set (<code>--fail-on</code>).</p>"
    failed = [v for v in verdicts if v["failed"]]
    badge = (f'<p class="verdict fail">FAILED: {escape(", ".join(v["condition"] for v in failed))}</p>'
             if failed else '<p class="verdict pass">All thresholds passed</p>')
    rows = [(v["condition"], f"{v['observed']:g}", ("FAILED", "failed") if v["failed"] else "ok")
            for v in verdicts]
    return badge + _table(("condition (fails when true)", "observed", "verdict"), rows, cls="thresholds")


def render_html(data: Mapping[str, Any]) -> str:
    """The whole page for report ``data``."""
    cfg, conn, calls, lat = data["config"], data["connections"], data["calls"], data["latency_ms"]
    err, tx = data["errors"], data["transactions"]
    timeline = data.get("timeline", [])
    xs = [float(row["t_s"]) for row in timeline]

    def column(key: str) -> list[float]:
        return [float(row.get(key, 0.0)) for row in timeline]

    charts = [
        svg_chart("Connected chargers", "", xs, [("connected", column("connected"))]),
        svg_chart("Calls per second", "", xs, [("calls/s", column("calls_per_s"))]),
        svg_chart("Latency per interval", "ms", xs,
                  [(q, column(f"{q}_ms")) for q in ("p50", "p95", "p99")]),
        svg_chart("Errors per interval by kind", "", xs, error_series(timeline)),
    ]
    actions = [
        (action, s["count"], s["errors"], *(s["latency_ms"].get(k, "") for k in
                                             ("p50", "p90", "p95", "p99", "max", "mean")))
        for action, s in sorted(data["calls"]["by_action"].items(), key=lambda kv: -kv[1]["count"])
    ]
    totals = [
        ("duration", f"{data['duration_s']:.1f} s"),
        ("connections", f"requested {conn['requested']}, established {conn['established']}, "
                        f"failed {conn['failed']}, peak connected {conn['peak_connected']}"),
        ("calls", f"{calls['total']} ({calls['per_second']:.1f}/s)"),
        ("latency ms (all calls)", f"p50 {lat['p50']}, p95 {lat.get('p95', '-')}, p99 {lat['p99']}, "
                                   f"max {lat['max']}"),
        ("sessions", f"started {tx['started']}, stopped {tx['stopped']}, "
                     f"energy {data['energy_wh'] / 1000:.1f} kWh"),
        ("errors", f"{err['total']} ({err['protocol']} protocol)"),
    ]
    host = data.get("host")
    if host is not None:
        totals.append(("fleet CPU", f"{host['fleet_cpu_percent']} % of one core"))
    params = [(key, value) for key, value in cfg.items()] + [
        ("started_at", data["started_at"]), ("finished_at", data["finished_at"])]
    kinds = sorted(err["by_kind"].items(), key=lambda kv: -kv[1])
    title = f"csms-sim report: {cfg.get('scenario', '')} against {cfg.get('csms_url', '')}"
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        "<h2>Thresholds</h2>", _thresholds(data),
        "<h2>Totals</h2>", _table(("", ""), totals, cls="totals"),
        '<h2>Over time</h2><div class="charts">',
        *(f"<figure>{chart}</figure>" for chart in charts), "</div>",
        "<h2>Latency by action (ms)</h2>",
        _table(("action", "calls", "errors", "p50", "p90", "p95", "p99", "max", "mean"), actions,
               cls="actions"),
        "<h2>Errors by kind</h2>",
        _table(("kind", "count"), kinds, cls="errors") if kinds else "<p>No errors.</p>",
        "<h2>Run parameters</h2>", _table(("parameter", "value"), params, cls="params"),
        "</body></html>\n",
    ])


__all__ = ["error_series", "nice_ticks", "render_html", "svg_chart"]
