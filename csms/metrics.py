"""Prometheus metrics of one CSMS instance (own registry, so several can run in one process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from csms.core.model import OcppVersion

CONTENT_TYPE = CONTENT_TYPE_LATEST


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
        self.call_errors = Counter(
            "csms_call_errors_total", "CALLERRORs sent to stations by code",
            ["protocol", "code"], registry=r,
        )
        self.frame_errors = Counter(
            "csms_frame_errors_total", "Frames that could not be processed", ["reason"], registry=r
        )
        self.latency = Histogram(
            "csms_handler_seconds", "Time to handle an inbound CALL", ["action"], registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.handshakes = Counter(
            "csms_handshakes_total", "WebSocket upgrade attempts by outcome", ["outcome"], registry=r
        )
        self._handled: dict[tuple[OcppVersion, str], tuple[Any, Any]] = {}

    def handled(self, version: OcppVersion, action: str, seconds: float) -> None:
        pair = self._handled.get((version, action))
        if pair is None:
            pair = (
                self.messages.labels("in", version.value, action, "ok"),
                self.latency.labels(action),
            )
            self._handled[(version, action)] = pair
        pair[0].inc()
        pair[1].observe(seconds)

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

    def render(self) -> bytes:
        return generate_latest(self.registry)
