"""Per-interval CSMS health from cumulative Prometheus metrics: message rates and latencies.

``IntervalStats`` keeps the previous cumulative values and turns them into deltas
per health interval; it reads plain ``(name, labels, value)`` samples, so it is
testable without a registry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from csms.telemetry.points import ActionStats, LatencyStats

Sample = tuple[str, Mapping[str, str], float]


def registry_samples(registry: object, *names: str) -> list[Sample]:
    """The samples of the metric families called ``names`` in a prometheus registry."""
    out: list[Sample] = []
    for family in registry.collect():  # type: ignore[attr-defined]
        if family.name in names:
            out.extend((s.name, s.labels, float(s.value)) for s in family.samples)
    return out


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """``histogram_quantile``: ``buckets`` are (upper bound, cumulative count), sorted."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    target = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= target:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (target - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


@dataclass(slots=True)
class IntervalStats:
    """Deltas of the message counter and the handler-latency histogram between two calls."""

    _messages: dict[tuple[str, ...], float] = field(default_factory=dict)
    _hist: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def actions(self, samples: Iterable[Sample], dt_s: float) -> tuple[ActionStats, ...]:
        """Messages per (direction, protocol, action, result) since the last call (only non-zero).

        Samples without ``direction``/``result`` labels (``csms_messages_handled``: inbound CALLs
        answered) count as ``in``/``ok``."""
        out = []
        for name, labels, value in samples:
            if not name.endswith("_total"):
                continue
            key = (labels.get("direction", "in"), labels["protocol"], labels["action"],
                   labels.get("result", "ok"))
            delta = value - self._messages.get(key, 0.0)
            self._messages[key] = value
            if delta > 0:
                out.append(ActionStats(*key, count=int(delta), rate_per_s=delta / max(dt_s, 1e-9)))
        return tuple(out)

    def latencies(self, samples: Iterable[Sample]) -> tuple[LatencyStats, ...]:
        """Mean and p95 handler latency per action since the last call (actions that ran)."""
        delta: dict[str, dict[str, float]] = {}
        buckets: dict[str, list[tuple[float, float]]] = {}
        for name, labels, value in samples:
            action = labels.get("action", "")
            le = labels.get("le", "")
            key = (name, action, le)
            change = value - self._hist.get(key, 0.0)
            self._hist[key] = value
            if name.endswith("_bucket"):
                buckets.setdefault(action, []).append((float(le), change))
            elif name.endswith("_count") or name.endswith("_sum"):
                delta.setdefault(action, {})[name.rsplit("_", 1)[1]] = change
        out = []
        for action, d in sorted(delta.items()):
            count = d.get("count", 0.0)
            if count <= 0:
                continue
            p95 = quantile(0.95, sorted(buckets.get(action, [])))
            out.append(LatencyStats(
                action, int(count), 1000 * d.get("sum", 0.0) / count, None if p95 is None else 1000 * p95
            ))
        return tuple(out)
