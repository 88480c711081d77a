"""Prometheus metrics of one CSMS instance (own registry, so several can run in one process)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from csms import looplag
from csms.gcpolicy import PAUSE_BUCKETS_S, GcStats
from ocppj.versions import OcppVersion

CONTENT_TYPE = CONTENT_TYPE_LATEST


def loop_lag_histogram(registry: CollectorRegistry) -> Histogram:
    """``csms_event_loop_lag_seconds`` (``csms.looplag``), for the core's and a gateway's registry."""
    return Histogram("csms_event_loop_lag_seconds", looplag.HELP, buckets=looplag.LAG_BUCKETS_S,
                     registry=registry)


class Metrics:
    """Counters and histograms, with cached label children on the per-message path."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connected = Gauge(
            "csms_connected_stations", "Stations connected now", ["protocol"], registry=r
        )
        self.messages = Counter(
            "csms_messages_total", "OCPP messages by direction, action and result",
            ["direction", "protocol", "action", "result"], registry=r,
        )
        self._fast = _HandledCollector()
        self._observers: dict[OcppVersion, Callable[[str, float], None]] = {}
        r.register(self._fast)
        self.call_errors = Counter(
            "csms_call_errors_total", "CALLERRORs sent to stations by code",
            ["protocol", "code"], registry=r,
        )
        self.frame_errors = Counter(
            "csms_frame_errors_total", "Frames that could not be processed", ["reason"], registry=r
        )
        self.handshakes = Counter(
            "csms_handshakes_total", "WebSocket upgrade attempts by outcome", ["outcome"], registry=r
        )
        self.keepalive_pings = Counter(
            "csms_keepalive_pings_total", "WebSocket pings sent to stations that went quiet", registry=r
        )
        self.keepalive_timeouts = Counter(
            "csms_keepalive_timeouts_total", "Stations closed (1011) for not answering a ping", registry=r
        )
        self.loop_lag = loop_lag_histogram(r)

    def handled(self, version: OcppVersion, action: str, seconds: float) -> None:
        """One inbound CALL answered: plain integer counting, aggregated at scrape time."""
        self._fast.observe(version.value, action, seconds)

    def handled_observer(self, version: OcppVersion) -> Callable[[str, float], None]:
        """``handled`` for one version, as a plain function (the per-message path); one per
        version, shared by every session."""
        cached = self._observers.get(version)
        if cached is not None:
            return cached
        observe, protocol = self._fast.observe, version.value

        def handled(action: str, seconds: float) -> None:
            observe(protocol, action, seconds)

        self._observers[version] = handled
        return handled

    def call_error_sent(self, version: OcppVersion, action: str, code: str) -> None:
        self.messages.labels("in", version.value, action, "call_error").inc()
        self.call_errors.labels(version.value, code).inc()

    def outbound(self, version: OcppVersion, action: str, result: str) -> None:
        self.messages.labels("out", version.value, action, result).inc()

    def frame_error(self, reason: str) -> None:
        self.frame_errors.labels(reason).inc()

    def gauge_callback(self, name: str, doc: str, fn: Callable[[], float]) -> None:
        """Register a gauge whose value is read at scrape time."""
        Gauge(name, doc, registry=self.registry).set_function(fn)

    def watch_station_events(self, counts: Mapping[str, int], dropped: Callable[[], int]) -> None:
        """Expose station events stored per action and those a full buffer dropped."""
        self.registry.register(StationEventsCollector(counts, dropped))

    def watch_singletons(self, leaders: Callable[[], Iterable[tuple[str, bool]]]) -> None:
        """Expose ``csms_singleton_leader{name}``: 1 where this node runs the singleton loop ``name``."""
        self.registry.register(SingletonCollector(leaders))

    def watch_gc(self, stats: GcStats) -> None:
        """Expose the process's garbage-collector pauses (see ``csms.gcpolicy``)."""
        self.registry.register(GcCollector(stats))

    def watch_clock_offsets(
        self, offsets: Callable[[], Iterable[float]], *, threshold_s: float = 60.0
    ) -> None:
        """Expose the stations' clock offsets as one fleet-wide distribution (not a series per
        station, which at 50,000 stations would be 50,000 series) plus the count past
        ``threshold_s``; the API's station view has each station's own offset."""
        self.registry.register(ClockOffsetCollector(offsets, threshold_s))

    def render(self) -> bytes:
        return generate_latest(self.registry)


BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _HandledCollector(Collector):
    """Messages handled and handler latency, kept as plain lists on the per-message path
    (a prometheus_client Counter + Histogram cost ~2 us per message; this ~0.3 us)."""

    def __init__(self) -> None:
        # (protocol, action) -> [count, sum_seconds, bucket counts...]
        self._data: dict[tuple[str, str], list[float]] = {}

    def observe(self, protocol: str, action: str, seconds: float) -> None:
        row = self._data.get((protocol, action))
        if row is None:
            row = self._data[(protocol, action)] = [0.0] * (2 + len(BUCKETS) + 1)
        row[0] += 1
        row[1] += seconds
        row[2 + bisect.bisect_left(BUCKETS, seconds)] += 1

    def collect(self) -> Iterator[Metric]:
        handled = CounterMetricFamily(
            "csms_messages_handled", "Inbound CALLs answered with a CALLRESULT", labels=["protocol", "action"]
        )
        latency = HistogramMetricFamily(
            "csms_handler_seconds", "Time to handle an inbound CALL", labels=["protocol", "action"]
        )
        for (protocol, action), row in sorted(self._data.items()):
            handled.add_metric([protocol, action], row[0])
            cumulative, buckets = 0.0, []
            for bound, n in zip((*BUCKETS, float("inf")), row[2:], strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            latency.add_metric([protocol, action], buckets, row[1])
        yield handled
        yield latency


class GcCollector(Collector):
    """Collector pauses by generation, from ``GcStats`` (filled by a ``gc.callbacks`` hook)."""

    def __init__(self, stats: GcStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        st = self._stats
        pauses = HistogramMetricFamily(
            "csms_gc_pause_seconds", "Event-loop pauses of the cyclic garbage collector",
            labels=["generation"],
        )
        collected = CounterMetricFamily(
            "csms_gc_collected_objects", "Objects freed by the cyclic garbage collector",
            labels=["generation"],
        )
        for gen in range(3):
            cumulative, buckets = 0.0, []
            for bound, n in zip((*PAUSE_BUCKETS_S, float("inf")), st.buckets[gen], strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            pauses.add_metric([str(gen)], buckets, st.pause_sum_s[gen])
            collected.add_metric([str(gen)], st.collected[gen])
        yield pauses
        yield collected
        yield CounterMetricFamily("csms_gc_freezes", "Freezes of the collector's survivors", value=st.freezes)
        yield CounterMetricFamily("csms_gc_thaws", "Full collections of the frozen objects", value=st.thaws)
        yield GaugeMetricFamily("csms_gc_last_thaw_seconds", "Pause of the latest thaw", value=st.last_thaw_s)


class StationEventsCollector(Collector):
    """``csms_station_events_total{action}`` and ``csms_station_events_dropped_total``, read at scrape."""

    def __init__(self, counts: Mapping[str, int], dropped: Callable[[], int]) -> None:
        self._counts = counts
        self._dropped = dropped

    def collect(self) -> Iterator[Metric]:
        stored = CounterMetricFamily(
            "csms_station_events", "Station events stored, by OCPP action", labels=["action"]
        )
        for action, n in sorted(self._counts.items()):
            stored.add_metric([action], n)
        yield stored
        yield CounterMetricFamily(
            "csms_station_events_dropped", "Station events dropped because the write buffer was full",
            value=self._dropped(),
        )


OFFSET_BUCKETS_S = (1.0, 5.0, 30.0, 60.0, 300.0, 3600.0, 86400.0)


class ClockOffsetCollector(Collector):
    """``csms_station_clock_offset_seconds``: a gauge histogram of the stations' absolute clock
    offsets now; ``csms_stations_clock_offset_beyond`` counts those past the threshold."""

    def __init__(self, offsets: Callable[[], Iterable[float]], threshold_s: float) -> None:
        self._offsets = offsets
        self._threshold_s = threshold_s

    def collect(self) -> Iterator[Metric]:
        counts = [0] * (len(OFFSET_BUCKETS_S) + 1)
        total, beyond = 0.0, 0
        for offset in self._offsets():
            size = abs(offset)
            counts[bisect.bisect_left(OFFSET_BUCKETS_S, size)] += 1
            total += size
            beyond += size > self._threshold_s
        cumulative, buckets = 0, []
        for bound, n in zip((*OFFSET_BUCKETS_S, float("inf")), counts, strict=True):
            cumulative += n
            buckets.append(("+Inf" if bound == float("inf") else str(bound), float(cumulative)))
        hist = GaugeHistogramMetricFamily(
            "csms_station_clock_offset_seconds",
            "Stations by absolute clock offset (station time minus CSMS receive time)",
        )
        hist.add_metric([], buckets, total)
        yield hist
        yield GaugeMetricFamily(
            "csms_stations_clock_offset_beyond",
            f"Stations whose clock is off by more than {self._threshold_s:g} s", value=beyond,
        )


class SingletonCollector(Collector):
    """Which singleton loops this node runs now (``csms.cluster``)."""

    def __init__(self, leaders: Callable[[], Iterable[tuple[str, bool]]]) -> None:
        self._leaders = leaders

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "csms_singleton_leader", "1 where this node holds the singleton loop's lease", labels=["name"]
        )
        for name, held in self._leaders():
            family.add_metric([name], 1.0 if held else 0.0)
        yield family
