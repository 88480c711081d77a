"""What a fleet counts while it runs: connections, calls, latencies, errors, sessions.

One :class:`Recorder` per process; chargers call its methods on the hot path, so they
are plain attribute updates. ``export()`` gives a picklable dict that
``Recorder.merge`` adds into another recorder (``--workers``).

Error kinds are ``"<kind>"`` or ``"<kind>:<detail>"``; the kinds in
:data:`PROTOCOL_KINDS` are protocol errors (they make ``csms-sim`` exit non-zero).
"""

from __future__ import annotations

import bisect
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_KINDS = frozenset({
    "call_error",  # the CSMS answered our CALL with a CALLERROR
    "invalid_response",  # its CALLRESULT fails the official response schema
    "timeout",  # no answer within the call timeout
    "invalid_inbound_call",  # a CSMS-initiated CALL fails its request schema
    "unknown_inbound_action",  # a CSMS-initiated CALL names an action the version lacks
    "bad_frame",  # unparseable frame, or a CALLRESULT/CALLERROR nobody waited for
    "subprotocol",  # the CSMS did not agree on the OCPP subprotocol we offered
    "invalid_outgoing",  # the simulator built a payload that fails its schema (our bug)
    "simulator_bug",  # serving a CSMS call raised (our bug)
})


def is_protocol_error(kind: str) -> bool:
    """Whether an error kind (``"call_error:NotSupported"``...) is a protocol error."""
    return kind.partition(":")[0] in PROTOCOL_KINDS


_SCALE = 1.0 / math.log(1.02)


class Histogram:
    """Latencies in log buckets 2 % wide (quantiles within ~1 %), mergeable."""

    __slots__ = ("counts", "max_s", "sum_s", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0
        self.sum_s = 0.0
        self.max_s = 0.0

    def record(self, seconds: float) -> None:
        idx = int(math.log1p(seconds * 1e6) * _SCALE)
        counts = self.counts
        counts[idx] = counts.get(idx, 0) + 1
        self.total += 1
        self.sum_s += seconds
        if seconds > self.max_s:
            self.max_s = seconds

    def quantile(self, q: float) -> float:
        """The ``q`` quantile in seconds (0 when empty)."""
        if not self.total:
            return 0.0
        rank = q * self.total
        seen = 0
        for idx in sorted(self.counts):
            seen += self.counts[idx]
            if seen >= rank:
                mid = math.expm1((idx + 0.5) / _SCALE) / 1e6
                return min(mid, self.max_s)
        return self.max_s

    def cumulative(self, bounds: Sequence[float]) -> list[int]:
        """Counts at or below each bound in seconds (Prometheus ``le`` buckets; a 2 % bucket
        counts under the first bound at or above its upper edge)."""
        out = [0] * len(bounds)
        for idx, n in self.counts.items():
            upper = math.expm1((idx + 1) / _SCALE) / 1e6
            at = bisect.bisect_left(bounds, upper)
            if at < len(out):
                out[at] += n
        for i in range(1, len(out)):
            out[i] += out[i - 1]
        return out

    def merge(self, other: Histogram) -> None:
        for idx, n in other.counts.items():
            self.counts[idx] = self.counts.get(idx, 0) + n
        self.total += other.total
        self.sum_s += other.sum_s
        self.max_s = max(self.max_s, other.max_s)

    def summary_ms(self) -> dict[str, float]:
        """p50/p90/p95/p99/max/mean in milliseconds."""
        mean = self.sum_s / self.total if self.total else 0.0
        return {
            "p50": round(self.quantile(0.5) * 1e3, 3),
            "p90": round(self.quantile(0.9) * 1e3, 3),
            "p95": round(self.quantile(0.95) * 1e3, 3),
            "p99": round(self.quantile(0.99) * 1e3, 3),
            "max": round(self.max_s * 1e3, 3),
            "mean": round(mean * 1e3, 3),
        }

    def export(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "total": self.total, "sum_s": self.sum_s, "max_s": self.max_s}

    @classmethod
    def load(cls, data: dict[str, Any]) -> Histogram:
        h = cls()
        h.counts = {int(k): int(v) for k, v in data["counts"].items()}
        h.total, h.sum_s, h.max_s = int(data["total"]), float(data["sum_s"]), float(data["max_s"])
        return h


@dataclass(slots=True)
class ActionStats:
    """Our CALLs of one action: how many, how many failed, and their latencies."""

    count: int = 0
    errors: int = 0
    latency: Histogram = field(default_factory=Histogram)


@dataclass(frozen=True, slots=True)
class Progress:
    """A live snapshot: totals so far and the last window's rate and latency."""

    elapsed_s: float
    connected: int
    calls: int
    errors: int
    protocol_errors: int
    window_s: float
    window_calls: int
    window_latency: Histogram
    transactions_started: int
    transactions_stopped: int
    live: LiveTotals | None = None  # per-action totals for the live metrics endpoint

    @property
    def calls_per_s(self) -> float:
        return self.window_calls / self.window_s if self.window_s > 0 else 0.0

    def rate_text(self, width: int) -> str:
        """``calls_per_s`` for a progress line; a dash for a window under a second (the closing
        snapshot after a stop: a burst of stop calls over a few ms is not a rate)."""
        return f"{self.calls_per_s:{width}.1f}" if self.window_s >= 1.0 else "-".rjust(width)

    def export(self) -> dict[str, Any]:
        return {
            "elapsed_s": self.elapsed_s, "connected": self.connected, "calls": self.calls,
            "errors": self.errors, "protocol_errors": self.protocol_errors, "window_s": self.window_s,
            "window_calls": self.window_calls, "window_latency": self.window_latency.export(),
            "transactions_started": self.transactions_started,
            "transactions_stopped": self.transactions_stopped,
            "live": None if self.live is None else self.live.export(),
        }

    @classmethod
    def combine(cls, parts: list[dict[str, Any]]) -> Progress:
        """Add up the latest snapshots of several workers."""
        latency = Histogram()
        for p in parts:
            latency.merge(Histogram.load(p["window_latency"]))
        return cls(
            elapsed_s=max((p["elapsed_s"] for p in parts), default=0.0),
            connected=sum(p["connected"] for p in parts),
            calls=sum(p["calls"] for p in parts),
            errors=sum(p["errors"] for p in parts),
            protocol_errors=sum(p["protocol_errors"] for p in parts),
            window_s=max((p["window_s"] for p in parts), default=0.0),
            window_calls=sum(p["window_calls"] for p in parts),
            window_latency=latency,
            transactions_started=sum(p["transactions_started"] for p in parts),
            transactions_stopped=sum(p["transactions_stopped"] for p in parts),
            live=LiveTotals.combine([LiveTotals.load(p["live"]) for p in parts if p.get("live")]),
        )


@dataclass(frozen=True, slots=True)
class LiveTotals:
    """Totals since the start, by action and by error kind: what ``--metrics-port`` serves."""

    connected: int
    calls: dict[str, ActionStats]
    errors: dict[str, int]
    connect_failures: dict[str, int]

    def export(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "calls": {a: {"count": s.count, "errors": s.errors, "latency": s.latency.export()}
                      for a, s in self.calls.items()},
            "errors": dict(self.errors), "connect_failures": dict(self.connect_failures),
        }

    @classmethod
    def load(cls, data: dict[str, Any]) -> LiveTotals:
        calls = {a: ActionStats(int(s["count"]), int(s["errors"]), Histogram.load(s["latency"]))
                 for a, s in data["calls"].items()}
        return cls(int(data["connected"]), calls, dict(data["errors"]), dict(data["connect_failures"]))

    @classmethod
    def combine(cls, parts: list[LiveTotals]) -> LiveTotals:
        calls: dict[str, ActionStats] = {}
        errors: Counter[str] = Counter()
        failures: Counter[str] = Counter()
        for part in parts:
            for action, s in part.calls.items():
                mine = calls.setdefault(action, ActionStats())
                mine.count += s.count
                mine.errors += s.errors
                mine.latency.merge(s.latency)
            errors.update(part.errors)
            failures.update(part.connect_failures)
        return cls(sum(p.connected for p in parts), calls, dict(errors), dict(failures))


_COUNTERS = (
    "connections_requested", "connections_established", "reconnects", "connections_lost",
    "duplicate_connections", "old_connections_closed_by_csms", "boots_accepted", "boots_pending",
    "boots_rejected", "transactions_started", "transactions_stopped", "authorizations_rejected",
    "offline_messages", "connector_faults", "resets",
)


class Recorder:
    """Counters of one fleet process."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.connected = 0
        self.peak_connected = 0
        self.calls: dict[str, ActionStats] = {}
        self.inbound: Counter[str] = Counter()
        self.inbound_unsupported: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.connect_failures: Counter[str] = Counter()
        self.energy_wh = 0.0
        self.counters: Counter[str] = Counter()
        self.timeline: list[dict[str, Any]] = []  # one row per snapshot, at most TIMELINE_ROWS
        self.until_stop = Histogram()  # latencies before the fleet began to stop
        self.stopping = False
        self._window = Histogram()
        self._window_calls = 0
        self._window_start = self.started
        self._window_errors: Counter[str] = Counter()  # error counts when the window began
        self._calls_total = 0

    # --- hot path ---------------------------------------------------------------------
    def call_done(self, action: str, latency_s: float) -> None:
        stats = self.calls.get(action)
        if stats is None:
            stats = self.calls[action] = ActionStats()
        stats.count += 1
        stats.latency.record(latency_s)
        self._window.record(latency_s)
        if not self.stopping:
            self.until_stop.record(latency_s)
        self._window_calls += 1
        self._calls_total += 1

    def call_failed(self, action: str, kind: str) -> None:
        """Our CALL of ``action`` got no usable answer (``kind`` as in :data:`PROTOCOL_KINDS`)."""
        stats = self.calls.get(action)
        if stats is None:
            stats = self.calls[action] = ActionStats()
        stats.count += 1
        stats.errors += 1
        self._calls_total += 1
        self._window_calls += 1
        self.errors[kind] += 1

    def error(self, kind: str) -> None:
        self.errors[kind] += 1

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def connection_up(self) -> None:
        self.counters["connections_established"] += 1
        self.connected += 1
        self.peak_connected = max(self.peak_connected, self.connected)

    def connection_down(self) -> None:
        self.connected -= 1

    # --- totals -----------------------------------------------------------------------
    @property
    def protocol_errors(self) -> int:
        return sum(n for kind, n in self.errors.items() if is_protocol_error(kind))

    @property
    def calls_total(self) -> int:
        return self._calls_total

    def live_totals(self) -> LiveTotals:
        """A copy of the totals by action and error kind."""
        calls = {}
        for action, s in self.calls.items():
            latency = Histogram()
            latency.merge(s.latency)
            calls[action] = ActionStats(s.count, s.errors, latency)
        return LiveTotals(self.connected, calls, dict(self.errors), dict(self.connect_failures))

    def snapshot(self) -> Progress:
        """Totals plus the window since the previous snapshot (which it closes)."""
        now = time.monotonic()
        progress = Progress(
            elapsed_s=now - self.started, connected=self.connected, calls=self._calls_total,
            errors=sum(self.errors.values()), protocol_errors=self.protocol_errors,
            window_s=now - self._window_start, window_calls=self._window_calls,
            window_latency=self._window,
            transactions_started=self.counters["transactions_started"],
            transactions_stopped=self.counters["transactions_stopped"],
            live=self.live_totals(),
        )
        window_errors = {k: n - self._window_errors[k] for k, n in self.errors.items()
                         if n > self._window_errors[k]}
        self._window_errors = Counter(self.errors)
        self.timeline.append({
            "t_s": round(progress.elapsed_s, 3), "connected": progress.connected,
            "calls_per_s": round(progress.calls_per_s, 2), "errors": progress.errors,
            "p50_ms": round(self._window.quantile(0.5) * 1e3, 3),
            "p95_ms": round(self._window.quantile(0.95) * 1e3, 3),
            "p99_ms": round(self._window.quantile(0.99) * 1e3, 3),
            "window_s": round(progress.window_s, 3), "errors_by_kind": window_errors,
        })
        if len(self.timeline) > TIMELINE_ROWS:
            self.timeline = coalesce_timeline(self.timeline)
        self._window = Histogram()
        self._window_calls = 0
        self._window_start = now
        return progress

    def export(self) -> dict[str, Any]:
        """A picklable copy for merging across processes."""
        return {
            "peak_connected": self.peak_connected,
            "connected": self.connected,
            "calls": {a: {"count": s.count, "errors": s.errors, "latency": s.latency.export()}
                      for a, s in self.calls.items()},
            "inbound": dict(self.inbound),
            "inbound_unsupported": dict(self.inbound_unsupported),
            "errors": dict(self.errors),
            "connect_failures": dict(self.connect_failures),
            "energy_wh": self.energy_wh,
            "until_stop": self.until_stop.export(),
            "counters": dict(self.counters),
            "timeline": list(self.timeline),
        }

    def merge(self, data: dict[str, Any]) -> None:
        """Add an exported recorder into this one (timelines are added by time bucket)."""
        self.peak_connected += int(data["peak_connected"])
        self.connected += int(data["connected"])
        for action, s in data["calls"].items():
            mine = self.calls.setdefault(action, ActionStats())
            mine.count += s["count"]
            mine.errors += s["errors"]
            mine.latency.merge(Histogram.load(s["latency"]))
            self._calls_total += s["count"]
        for name in ("inbound", "inbound_unsupported", "errors", "connect_failures", "counters"):
            getattr(self, name).update(data[name])
        self.energy_wh += float(data["energy_wh"])
        self.until_stop.merge(Histogram.load(data["until_stop"]))
        self.timeline = _merge_timelines(self.timeline, data["timeline"])


TIMELINE_ROWS = 720
"""Rows a timeline keeps: past it, neighbouring rows are paired (the resolution halves),
so a day-long run holds as much memory as a one-hour one."""

_QUANTILES = ("p50_ms", "p95_ms", "p99_ms")


def _add_kinds(x: dict[str, int], y: dict[str, int]) -> dict[str, int]:
    out = dict(x)
    for kind, n in y.items():
        out[kind] = out.get(kind, 0) + n
    return out


def coalesce_timeline(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Half as many rows: each pair becomes one (rates averaged over time, error counts
    added, quantiles the worse of the two, totals and time of the later one)."""
    out = []
    for i in range(0, len(rows) - 1, 2):
        x, y = rows[i], rows[i + 1]
        wx, wy = x.get("window_s", 1.0), y.get("window_s", 1.0)
        span = wx + wy
        rate = (x["calls_per_s"] * wx + y["calls_per_s"] * wy) / span if span > 0 else 0.0
        out.append({
            **y, "calls_per_s": round(rate, 2), "window_s": round(span, 3),
            "errors_by_kind": _add_kinds(x.get("errors_by_kind", {}), y.get("errors_by_kind", {})),
            **{q: max(x.get(q, 0.0), y.get(q, 0.0)) for q in _QUANTILES},
        })
    if len(rows) % 2:
        out.append(rows[-1])
    return out


def _merge_timelines(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pair the i-th snapshots of two workers (they snapshot on the same schedule)."""
    if not a:
        return list(b)
    out = []
    for i in range(max(len(a), len(b))):
        if i >= len(a) or i >= len(b):
            out.append(dict(a[i] if i < len(a) else b[i]))
            continue
        x, y = a[i], b[i]
        out.append({
            "t_s": max(x["t_s"], y["t_s"]), "connected": x["connected"] + y["connected"],
            "calls_per_s": round(x["calls_per_s"] + y["calls_per_s"], 2),
            "errors": x["errors"] + y["errors"],
            **{q: max(x.get(q, 0.0), y.get(q, 0.0)) for q in _QUANTILES},
            "window_s": max(x.get("window_s", 0.0), y.get("window_s", 0.0)),
            "errors_by_kind": _add_kinds(x.get("errors_by_kind", {}), y.get("errors_by_kind", {})),
        })
    return out


__all__ = [
    "PROTOCOL_KINDS", "TIMELINE_ROWS", "ActionStats", "Histogram", "LiveTotals", "Progress", "Recorder",
    "coalesce_timeline", "is_protocol_error",
]
