"""The load-test report: live progress lines, the end summary, the JSON (and HTML) file, optional plots.

The JSON schema (``csms-sim-report/1``) is documented in ``docs/simulator.md``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from simulators.host import warnings
from simulators.html_report import render_html
from simulators.metrics import Histogram, Progress, Recorder, is_protocol_error
from simulators.thresholds import Verdict

SCHEMA = "csms-sim-report/1"


@dataclass(frozen=True, slots=True)
class Report:
    """A finished run; ``data`` is exactly what ``to_json`` writes."""

    data: dict[str, Any]

    @property
    def protocol_errors(self) -> int:
        return int(self.data["errors"]["protocol"])

    @property
    def connections_established(self) -> int:
        return int(self.data["connections"]["established"])

    @property
    def thresholds_failed(self) -> list[str]:
        """The ``--fail-on`` conditions that held (the run failed on them)."""
        return [v["condition"] for v in self.data.get("thresholds", []) if v["failed"]]

    def with_thresholds(self, verdicts: list[Verdict]) -> Report:
        """This report with the verdicts of its thresholds (key ``thresholds``)."""
        return Report({**self.data, "thresholds": [v.export() for v in verdicts]})

    def to_json(self) -> bytes:
        return orjson.dumps(self.data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    def write(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_json() + b"\n")

    def summary(self) -> str:
        """A few human-readable lines for the end of a run."""
        d = self.data
        c, calls, lat, err, tx = d["connections"], d["calls"], d["latency_ms"], d["errors"], d["transactions"]
        lines = [
            f"csms-sim: {d['config']['chargers']} chargers ({d['config']['protocol']}) against "
            f"{d['config']['csms_url']} for {d['duration_s']:.1f} s",
            f"  connections  requested {c['requested']}, established {c['established']}, "
            f"failed {c['failed']}, reconnects {c['reconnects']}, peak connected {c['peak_connected']}",
            f"  calls        {calls['total']} ({calls['per_second']:.1f}/s), latency ms p50 {lat['p50']} "
            f"p90 {lat['p90']} p99 {lat['p99']} max {lat['max']} (until stop: p99 "
            f"{d['latency_ms_until_stop']['p99']})",
            f"  sessions     started {tx['started']}, stopped {tx['stopped']}, "
            f"energy {d['energy_wh'] / 1000:.1f} kWh",
            f"  errors       {err['total']} ({err['protocol']} protocol)",
        ]
        for kind, n in sorted(err["by_kind"].items(), key=lambda kv: -kv[1])[:10]:
            lines.append(f"    {n:>8}  {kind}")
        if c["failures_by_kind"]:
            failures = ", ".join(f"{k} {v}" for k, v in sorted(c["failures_by_kind"].items()))
            lines.append(f"  connect failures: {failures}")
        verdicts = d.get("thresholds", [])
        if verdicts:
            failed = sum(1 for v in verdicts if v["failed"])
            lines.append(f"  thresholds   {len(verdicts) - failed} passed, {failed} failed")
            for v in verdicts:
                word = "FAILED" if v["failed"] else "ok"
                lines.append(f"    {word:>6}  {v['condition']}  (observed {v['observed']:g})")
        h = d.get("host")
        if h is not None:
            steal = "n/a" if h["steal_percent"] is None else f"{h['steal_percent']} %"
            lines.append(f"  host         CPU of this process and its workers {h['fleet_cpu_percent']} % "
                         f"of one core ({h['fleet_share_percent']} % of the {h['usable_cores']} usable), "
                         f"hypervisor steal {steal}")
            lines += [f"  warning: {w}" for w in warnings(h)]
        return "\n".join(lines)


def build_report(
    recorder: Recorder, *, config: dict[str, Any], started_at: datetime, finished_at: datetime,
    duration_s: float, host: dict[str, Any] | None = None,
) -> Report:
    """The report of a run from its (merged) recorder; ``host``: ``simulators.host.usage``."""
    overall = Histogram()
    by_action = {}
    for action, stats in sorted(recorder.calls.items()):
        overall.merge(stats.latency)
        by_action[action] = {
            "count": stats.count, "errors": stats.errors, "latency_ms": stats.latency.summary_ms()
        }
    counters = recorder.counters
    errors = dict(sorted(recorder.errors.items()))
    total_calls = recorder.calls_total
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "duration_s": round(duration_s, 3),
        "config": config,
        "connections": {
            "requested": counters["connections_requested"],
            "established": counters["connections_established"],
            "failed": sum(recorder.connect_failures.values()),
            "failures_by_kind": dict(sorted(recorder.connect_failures.items())),
            "reconnects": counters["reconnects"],
            "lost": counters["connections_lost"],
            "peak_connected": recorder.peak_connected,
            "connected_at_end": recorder.connected,
            "duplicate_connections": counters["duplicate_connections"],
            "old_connections_closed_by_csms": counters["old_connections_closed_by_csms"],
            "old_connections_left_open": counters["old_connections_left_open"],
        },
        "boots": {k: counters[f"boots_{k}"] for k in ("accepted", "pending", "rejected")},
        "calls": {
            "total": total_calls,
            "per_second": round(total_calls / duration_s, 2) if duration_s > 0 else 0.0,
            "by_action": by_action,
        },
        "latency_ms": overall.summary_ms(),
        "latency_ms_until_stop": recorder.until_stop.summary_ms(),
        "inbound_calls": {
            "total": sum(recorder.inbound.values()),
            "by_action": dict(sorted(recorder.inbound.items())),
            "unsupported": dict(sorted(recorder.inbound_unsupported.items())),
        },
        "errors": {
            "total": sum(errors.values()),
            "protocol": sum(n for k, n in errors.items() if is_protocol_error(k)),
            "by_kind": errors,
        },
        "transactions": {
            "started": counters["transactions_started"],
            "stopped": counters["transactions_stopped"],
            "authorizations_rejected": counters["authorizations_rejected"],
            "offline_messages": counters["offline_messages"],
            "messages_unsent_at_end": counters["messages_unsent_at_end"],
        },
        "faults": {
            "connector_faults": counters["connector_faults"],
            "resets": counters["resets"],
        },
        "energy_wh": round(recorder.energy_wh, 1),
        "timeline": recorder.timeline,
    }
    if host is not None:
        data["host"] = host
    return Report(data)


def write_report(report: Report, path: str | Path) -> list[Path]:
    """Write the report chosen by extension: ``.html`` writes the HTML page and, alongside,
    the JSON (``out.html`` + ``out.json``); anything else writes the JSON only."""
    target = Path(path)
    if target.suffix.lower() not in (".html", ".htm"):
        report.write(target)
        return [target]
    target.write_text(render_html(report.data), encoding="utf-8")
    companion = target.with_suffix(".json")
    report.write(companion)
    return [target, companion]


def progress_line(p: Progress) -> str:
    """One live line: connected, rate, errors, latency of the last window."""
    p50_ms = p.window_latency.quantile(0.5) * 1e3
    p99_ms = p.window_latency.quantile(0.99) * 1e3
    return (f"[{p.elapsed_s:7.1f}s] connected {p.connected:>6}  calls/s {p.rate_text(8)}  "
            f"calls {p.calls:>9}  errors {p.errors:>5} (protocol {p.protocol_errors})  "
            f"p50 {p50_ms:7.2f} ms  p99 {p99_ms:7.2f} ms  "
            f"tx {p.transactions_started}/{p.transactions_stopped}")


def write_plots(report: Report, directory: str | Path) -> list[Path] | None:
    """Latency and throughput over time as PNGs; None when matplotlib is not installed."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        return None
    matplotlib.use("Agg")
    plt = importlib.import_module("matplotlib.pyplot")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    timeline = report.data["timeline"]
    t = [row["t_s"] for row in timeline]
    written = []
    for name, keys, label in (
        ("latency.png", ("p50_ms", "p99_ms"), "latency (ms)"),
        ("throughput.png", ("calls_per_s", "connected"), "calls/s, connected"),
    ):
        fig, ax = plt.subplots(figsize=(8, 4))
        for key in keys:
            ax.plot(t, [row[key] for row in timeline], label=key)
        ax.set_xlabel("seconds")
        ax.set_ylabel(label)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / name)
        plt.close(fig)
        written.append(out / name)
    return written
