"""Pass/fail thresholds of a load test, k6-style: ``--fail-on "p99_ms>50,errors>0"``.

Each comma-separated condition is ``METRIC[{LABEL=VALUE}] OP NUMBER`` with OP one of
``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``; the run *fails* when any condition holds.
Metrics are read from a finished report (:data:`METRICS`); latencies cover every call of
the run. ``{action=X}`` narrows latency, ``calls`` and ``errors`` to our CALLs of one action,
``{kind=X}`` narrows ``errors`` to one error kind (``timeout``, ``call_error:NotSupported``...).
Pure: no I/O.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, ">": operator.gt,
}
_LATENCY = {"p50_ms": "p50", "p90_ms": "p90", "p95_ms": "p95", "p99_ms": "p99", "max_ms": "max",
            "mean_ms": "mean"}
_PLAIN = {
    "errors": "all errors (protocol and others)",
    "protocol_errors": "protocol errors",
    "connect_failures": "connection attempts that failed",
    "calls": "CALLs the chargers sent",
    "calls_per_s": "CALLs per second over the run",
    "peak_connected": "most chargers connected at once",
    "connected_at_end": "chargers connected when the run ended",
    "transactions_started": "sessions started",
    "transactions_stopped": "sessions stopped",
    "reconnects": "reconnections",
}
METRICS: dict[str, str] = {
    **{name: f"latency {key} in ms over all calls (label: action)" for name, key in _LATENCY.items()},
    **_PLAIN,
}
"""Every metric name with what it measures."""
_LABELS = {name: ("action",) for name in _LATENCY} | {"calls": ("action",), "errors": ("action", "kind")}
_CONDITION = re.compile(
    r"^\s*(?P<metric>[a-z0-9_]+)\s*(?:\{\s*(?P<label>[a-z]+)\s*=\s*(?P<value>[^}]*?)\s*\})?"
    r"\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<number>[-+0-9.eE]+)\s*$"
)


class ThresholdError(ValueError):
    """A ``--fail-on`` expression is malformed or names an unknown metric or label."""


@dataclass(frozen=True, slots=True)
class Threshold:
    """One failure condition."""

    metric: str
    op: str
    limit: float
    label: tuple[str, str] | None = None

    @property
    def text(self) -> str:
        label = "" if self.label is None else "{" + f"{self.label[0]}={self.label[1]}" + "}"
        return f"{self.metric}{label}{self.op}{self.limit:g}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A threshold checked against a report: ``failed`` when its condition holds."""

    threshold: Threshold
    observed: float
    failed: bool

    def export(self) -> dict[str, Any]:
        return {"condition": self.threshold.text, "observed": self.observed, "failed": self.failed}

    def line(self) -> str:
        word = "FAILED" if self.failed else "ok"
        return f"{word:>6}  {self.threshold.text}  (observed {self.observed:g})"


def parse_thresholds(text: str) -> tuple[Threshold, ...]:
    """Parse ``"p99_ms>50,errors>0"``; raises :class:`ThresholdError` saying what is wrong."""
    out = []
    for part in text.split(","):
        if not part.strip():
            raise ThresholdError(f"empty condition in {text!r} (conditions are separated by commas)")
        out.append(_parse_one(part))
    return tuple(out)


def _parse_one(part: str) -> Threshold:
    m = _CONDITION.match(part)
    if m is None:
        raise ThresholdError(f"cannot read {part.strip()!r}: expected METRIC OP NUMBER such as p99_ms>50 "
                             "or p99_ms{action=StartTransaction}>200 (OP: < <= > >= == !=)")
    metric = m["metric"]
    if metric not in METRICS:
        raise ThresholdError(f"unknown metric {metric!r} in {part.strip()!r}; known: {', '.join(METRICS)}")
    label = None
    if m["label"] is not None:
        allowed = _LABELS.get(metric, ())
        if m["label"] not in allowed:
            what = f"labels {', '.join(allowed)}" if allowed else "no label"
            raise ThresholdError(f"{metric} takes {what}, got {{{m['label']}=...}} in {part.strip()!r}")
        if not m["value"]:
            raise ThresholdError(f"empty {m['label']} value in {part.strip()!r}")
        label = (m["label"], m["value"])
    try:
        limit = float(m["number"])
    except ValueError:
        raise ThresholdError(f"{m['number']!r} is not a number in {part.strip()!r}") from None
    if not math.isfinite(limit):
        raise ThresholdError(f"the limit must be finite in {part.strip()!r}")
    return Threshold(metric, m["op"], limit, label)


def observe(threshold: Threshold, data: Mapping[str, Any]) -> float:
    """The value of a threshold's metric in report ``data`` (0 for an action never called)."""
    metric, label = threshold.metric, threshold.label
    if label is not None and label[0] == "action":
        stats = data["calls"]["by_action"].get(label[1])
        if stats is None:
            return 0.0
        if metric in _LATENCY:
            return float(stats["latency_ms"][_LATENCY[metric]])
        return float(stats["count"] if metric == "calls" else stats["errors"])
    if label is not None:  # errors{kind=...}: a kind, or a kind with all its details
        kinds = data["errors"]["by_kind"]
        return float(sum(n for k, n in kinds.items() if k == label[1] or k.startswith(label[1] + ":")))
    if metric in _LATENCY:
        return float(data["latency_ms"][_LATENCY[metric]])
    connections = data["connections"]
    plain: dict[str, Any] = {
        "errors": data["errors"]["total"], "protocol_errors": data["errors"]["protocol"],
        "connect_failures": connections["failed"], "calls": data["calls"]["total"],
        "calls_per_s": data["calls"]["per_second"], "peak_connected": connections["peak_connected"],
        "connected_at_end": connections["connected_at_end"],
        "transactions_started": data["transactions"]["started"],
        "transactions_stopped": data["transactions"]["stopped"], "reconnects": connections["reconnects"],
    }
    return float(plain[metric])


def evaluate(thresholds: Sequence[Threshold], data: Mapping[str, Any]) -> list[Verdict]:
    """Check each threshold against report ``data``."""
    out = []
    for t in thresholds:
        value = observe(t, data)
        out.append(Verdict(t, value, _OPS[t.op](value, t.limit)))
    return out


__all__ = ["METRICS", "Threshold", "ThresholdError", "Verdict", "evaluate", "observe", "parse_thresholds"]
