"""The alarms' Prometheus metrics: active alarms by kind and severity, failed webhook deliveries."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from csms.core.alarms import SEVERITY, AlarmBook


class ActiveAlarms(Collector):
    """``csms_alarms_active{kind,severity}``, read from the book at scrape time (every kind, 0 included)."""

    def __init__(self, book: Callable[[], AlarmBook]) -> None:
        self.book = book

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("csms_alarms_active", "Active (not cleared) alarms",
                                   labels=["kind", "severity"])
        counts = self.book().counts()
        for kind, severity in SEVERITY.items():
            family.add_metric([kind.value, severity.value], counts.get((kind, severity), 0))
        yield family


def webhook_failures(registry: CollectorRegistry) -> Counter:
    """``csms_alarm_webhook_failures_total``."""
    return Counter("csms_alarm_webhook_failures", "Alarm webhook deliveries given up (retries exhausted "
                   "or queue full)", registry=registry)
