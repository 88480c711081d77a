"""Live Prometheus metrics of a running fleet (``csms-sim run --metrics-port PORT``).

Served from the latest progress snapshot (refreshed every ``--progress-interval``, with
every worker's totals added up), so the chargers' hot path pays nothing for it:

- ``csms_sim_connected``: chargers connected now
- ``csms_sim_calls_total{action}`` / ``csms_sim_call_errors_total{action}``: our CALLs
- ``csms_sim_call_latency_seconds{action}``: histogram of CALL round trips
- ``csms_sim_errors_total{kind}``: errors by kind (``timeout``, ``call_error``...)
- ``csms_sim_connect_failures_total{kind}``: failed connection attempts by kind
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from simulators.metrics import LiveTotals, Progress

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class FleetCollector(Collector):
    """Turns the latest :class:`LiveTotals` into metric families at scrape time."""

    def __init__(self) -> None:
        self.totals = LiveTotals(0, {}, {}, {})

    def update(self, progress: Progress) -> None:
        if progress.live is not None:
            self.totals = progress.live

    def collect(self) -> Iterator[Any]:
        t = self.totals
        yield GaugeMetricFamily("csms_sim_connected", "Chargers connected now", value=t.connected)
        calls = CounterMetricFamily("csms_sim_calls", "CALLs the chargers sent", labels=["action"])
        failed = CounterMetricFamily("csms_sim_call_errors", "CALLs without a usable answer",
                                     labels=["action"])
        latency = HistogramMetricFamily("csms_sim_call_latency_seconds", "CALL round trip", labels=["action"])
        for action, stats in sorted(t.calls.items()):
            calls.add_metric([action], stats.count)
            failed.add_metric([action], stats.errors)
            cumulative = stats.latency.cumulative(LATENCY_BUCKETS_S)
            buckets = [(f"{b:g}", float(n)) for b, n in zip(LATENCY_BUCKETS_S, cumulative, strict=True)]
            buckets.append(("+Inf", float(stats.latency.total)))
            latency.add_metric([action], buckets, stats.latency.sum_s)
        errors = CounterMetricFamily("csms_sim_errors", "Errors by kind", labels=["kind"])
        for kind, n in sorted(t.errors.items()):
            errors.add_metric([kind], n)
        connect = CounterMetricFamily("csms_sim_connect_failures", "Failed connection attempts by kind",
                                      labels=["kind"])
        for kind, n in sorted(t.connect_failures.items()):
            connect.add_metric([kind], n)
        yield from (calls, failed, latency, errors, connect)


class MetricsServer:
    """A Prometheus text endpoint on ``host:port`` (``/metrics``) in a daemon thread."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.collector = FleetCollector()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector)
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.port = int(self._server.server_address[1])

    def update(self, progress: Progress) -> None:
        self.collector.update(progress)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


__all__ = ["LATENCY_BUCKETS_S", "FleetCollector", "MetricsServer"]
