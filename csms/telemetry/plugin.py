"""Plugins (``csms.plugins``): InfluxDB time series and MQTT events (each off while its url is empty)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from csms.config import Settings
from csms.core.events import (
    Event,
    FeederLoadChanged,
    StationBooted,
    StationConnected,
    TransactionEnded,
    TransactionStarted,
)
from csms.core.service import ChargingService
from csms.plugins import Cleanup, PluginContext
from csms.telemetry.health import IntervalStats, registry_samples
from csms.telemetry.influx import InfluxWriter, WriterSettings, make_transport
from csms.telemetry.mqtt import MQTT_EVENTS, MqttBridge
from csms.telemetry.points import (
    POINT_EVENTS,
    FieldValue,
    HealthSnapshot,
    StationTags,
    event_points,
    health_points,
    to_ns,
)
from csms.telemetry.spool import Spool

log = structlog.get_logger("csms.telemetry")

MIB = 1 << 20


def default_buffer_dir(settings: Settings) -> Path:
    """``influx.buffer_dir``, else ``telemetry-buffer/`` beside the SQLite file (or in the cwd)."""
    if settings.influx.buffer_dir:
        return Path(settings.influx.buffer_dir)
    db = settings.db
    if "://" in db or db in ("", ":memory:"):
        return Path.cwd() / "telemetry-buffer"
    return Path(db).resolve().parent / "telemetry-buffer"


class StationTagCache:
    """Vendor, model and protocol per station, kept current from boot/connect events."""

    def __init__(self) -> None:
        self._tags: dict[str, StationTags] = {}

    def seed(self, station_id: str, vendor: str, model: str, protocol: str) -> None:
        self._tags[station_id] = StationTags(vendor, model, protocol)

    def observe(self, ev: Event) -> None:
        old = self._tags.get(ev.station_id, StationTags())
        if isinstance(ev, StationBooted):
            self._tags[ev.station_id] = StationTags(ev.info.vendor, ev.info.model, old.protocol)
        elif isinstance(ev, StationConnected):
            self._tags[ev.station_id] = StationTags(old.vendor, old.model, ev.protocol.value)

    def get(self, station_id: str) -> StationTags:
        return self._tags.get(station_id) or StationTags()


class FeederSites:
    """The root of each feeder node (its ``site``), learnt from the balancer's load events."""

    def __init__(self) -> None:
        self._parent: dict[str, str | None] = {}

    def observe(self, ev: Event) -> None:
        if isinstance(ev, FeederLoadChanged):
            self._parent[ev.node_id] = ev.parent_id

    def site_of(self, node_id: str) -> str:
        node = node_id
        for _ in range(len(self._parent) + 1):
            parent = self._parent.get(node)
            if parent is None:
                return node
            node = parent
        return node


class ActiveSessions:
    """The set of sessions in progress, from transaction events."""

    def __init__(self, keys: set[tuple[str, str]]) -> None:
        self.keys = keys

    def observe(self, ev: Event) -> None:
        if isinstance(ev, TransactionStarted):
            self.keys.add((ev.station_id, ev.transaction.tx_id))
        elif isinstance(ev, TransactionEnded):
            self.keys.discard((ev.station_id, ev.transaction.tx_id))


class InfluxCollector:
    """Prometheus view of the InfluxDB writer (read at scrape time)."""

    def __init__(self, writer: InfluxWriter) -> None:
        self.writer = writer

    def collect(self) -> Iterator[Any]:
        writer = self.writer
        pts = CounterMetricFamily(
            "csms_telemetry_points", "Telemetry points by outcome", labels=["outcome"]
        )
        s = writer.stats
        for name in ("offered", "written", "spooled", "replayed", "dropped_full", "dropped_memory",
                     "rejected"):
            pts.add_metric([name], getattr(s, name))
        yield pts
        yield GaugeMetricFamily("csms_telemetry_buffer_bytes", "Disk buffer size",
                                value=writer.spool.size)
        yield GaugeMetricFamily("csms_telemetry_buffer_points", "Points in the disk buffer",
                                value=writer.spool.lines)
        yield GaugeMetricFamily("csms_telemetry_memory_points", "Points queued in memory",
                                value=writer.memory_points)
        yield GaugeMetricFamily("csms_telemetry_influx_up", "1 while InfluxDB accepts writes",
                                value=0 if s.down else 1)


class MqttCollector:
    """Prometheus view of the MQTT bridge (read at scrape time)."""

    def __init__(self, bridge: MqttBridge) -> None:
        self.bridge = bridge

    def collect(self) -> Iterator[Any]:
        bridge = self.bridge
        msgs = CounterMetricFamily("csms_mqtt_messages", "MQTT messages by outcome", labels=["outcome"])
        for name in ("offered", "published", "dropped", "received", "invalid"):
            msgs.add_metric([name], getattr(bridge.stats, name))
        yield msgs
        yield GaugeMetricFamily("csms_mqtt_outbox_messages", "Messages waiting for the broker",
                                value=len(bridge.outbox))
        yield GaugeMetricFamily("csms_mqtt_connected", "1 while connected to the broker",
                                value=1 if bridge.stats.connected else 0)


# --- health sampling ------------------------------------------------------------------------

class HealthSampler:
    """Builds a ``HealthSnapshot`` of the running CSMS every health interval."""

    def __init__(self, ctx: PluginContext, sessions: ActiveSessions) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.stats = IntervalStats()
        self._last = time.monotonic()
        self._cpu = time.process_time()

    def snapshot(self) -> HealthSnapshot:
        now_mono, cpu = time.monotonic(), time.process_time()
        dt = max(now_mono - self._last, 1e-6)
        cpu_pct = 100.0 * (cpu - self._cpu) / dt
        self._last, self._cpu = now_mono, cpu
        reg = self.ctx.metrics.registry
        actions = self.stats.actions(registry_samples(reg, "csms_messages", "csms_messages_handled"), dt)
        latencies = self.stats.latencies(registry_samples(reg, "csms_handler_seconds"))
        by_protocol = {"ocpp1.6": 0, "ocpp2.0.1": 0}
        for sess in self.ctx.sessions:
            by_protocol[sess.version.value] = by_protocol.get(sess.version.value, 0) + 1
        values: dict[str, FieldValue] = {
            "stations_connected": int(sum(by_protocol.values())), "cpu_pct": float(cpu_pct),
            "rss_mb": _rss_mb(), "active_sessions": len(self.sessions.keys),
            "messages_per_s": float(sum(a.rate_per_s for a in actions if a.direction == "in")),
            "call_errors_per_s": float(sum(a.rate_per_s for a in actions if a.result != "ok")),
        }
        values.update(self._network())
        values.update(self._pipeline())
        ts = to_ns(self.ctx.clock.now())
        return HealthSnapshot(ts, values, by_protocol, self._statuses(), actions, latencies)

    def _network(self) -> dict[str, FieldValue]:
        service = self.ctx.service
        now = self.ctx.clock.now()
        power = 0.0
        registered = len(service.live)
        for live in service.live.values():
            if not live.connected:
                continue
            for sample in live.last_sample.values():
                p = sample.power_w
                if p is not None and abs((now - sample.ts).total_seconds()) < 600:
                    power += p
        return {"stations_registered": registered, "power_w": float(power)}

    def _statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for live in self.ctx.service.live.values():
            for state in live.connectors.values():
                status = state.status if live.connected else "Offline"
                counts[status] = counts.get(status, 0) + 1
        return counts

    def _pipeline(self) -> Mapping[str, FieldValue]:
        out: dict[str, FieldValue] = {}
        parts = self.ctx.parts
        writer = parts.influx
        if writer is not None:
            s = writer.stats
            out.update(
                influx_written=s.written, influx_spooled=s.spooled,
                influx_dropped=s.dropped_full + s.dropped_memory,
                influx_rejected=s.rejected, influx_up=0 if s.down else 1, buffer_points=writer.spool.lines,
                buffer_bytes=writer.spool.size, memory_points=writer.memory_points,
            )
        bridge = parts.mqtt
        if bridge is not None:
            out.update(
                mqtt_outbox=len(bridge.outbox), mqtt_published=bridge.stats.published,
                mqtt_dropped=bridge.stats.dropped, mqtt_connected=1 if bridge.stats.connected else 0,
            )
        return out


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / MIB
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _health_loop(sampler: HealthSampler, writer: InfluxWriter, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            for point in health_points(sampler.snapshot()):
                writer.offer(point.line())
        except Exception:
            log.exception("health sampling failed")


# --- plugins --------------------------------------------------------------------------------

async def influx_plugin(ctx: PluginContext) -> Cleanup | None:
    """Write telemetry points to InfluxDB when ``influx.url`` is set."""
    cfg = ctx.settings.influx
    if not cfg.url:
        log.info("InfluxDB not configured: telemetry disabled (set influx.url or CSMS_INFLUX_URL)")
        return None
    directory = default_buffer_dir(ctx.settings)
    spool = await asyncio.to_thread(
        Spool, directory, max_bytes=cfg.buffer_max_mb * MIB, segment_bytes=cfg.segment_kb * 1024
    )
    writer = InfluxWriter(make_transport(cfg), spool, WriterSettings.from_config(cfg))
    tags, sessions = await _seed(ctx.service)
    sites = FeederSites()
    lookup, site_of, offer = tags.get, sites.site_of, writer.offer

    def on_event(ev: Event) -> None:
        tags.observe(ev)
        sessions.observe(ev)
        sites.observe(ev)
        for point in event_points(ev, lookup, site_of):
            offer(point.line())

    unsubscribe = ctx.bus.subscribe(on_event, *POINT_EVENTS)
    ctx.parts.influx = writer
    collector = InfluxCollector(writer)
    ctx.metrics.registry.register(collector)
    writer.start()
    sampler = HealthSampler(ctx, sessions)
    health = asyncio.get_running_loop().create_task(
        _health_loop(sampler, writer, cfg.health_interval_s), name="influx-health"
    )
    log.info("InfluxDB telemetry enabled", url=cfg.url, api=cfg.api, buffer_dir=str(directory),
             buffered_points=spool.lines)

    async def cleanup() -> None:
        unsubscribe()
        health.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await health
        await writer.close()
        ctx.metrics.registry.unregister(collector)
        ctx.parts.influx = None

    return cleanup


async def _seed(service: ChargingService) -> tuple[StationTagCache, ActiveSessions]:
    tags = StationTagCache()
    keys: set[tuple[str, str]] = set()
    for sid, live in service.live.items():
        info = live.info
        tags.seed(sid, info.vendor if info else "", info.model if info else "",
                  live.protocol.value if live.protocol else "")
    for tx in await service.store.list_transactions(active=True, limit=1_000_000):
        keys.add((tx.station_id, tx.tx_id))
    return tags, ActiveSessions(keys)


async def mqtt_plugin(ctx: PluginContext) -> Cleanup | None:
    """Publish events to MQTT and take feeder signals from it when ``mqtt.url`` is set."""
    cfg = ctx.settings.mqtt
    if not cfg.url:
        log.info("MQTT not configured: events are not published (set mqtt.url or CSMS_MQTT_URL)")
        return None
    bridge = MqttBridge(cfg, on_event=ctx.bus.publish)
    unsubscribe = ctx.bus.subscribe(bridge.offer_event, *MQTT_EVENTS)
    ctx.parts.mqtt = bridge
    collector = MqttCollector(bridge)
    ctx.metrics.registry.register(collector)
    bridge.start()
    log.info("MQTT events enabled", broker=f"{bridge.host}:{bridge.port}", prefix=cfg.topic_prefix,
             qos=cfg.qos)

    async def cleanup() -> None:
        unsubscribe()
        await bridge.close()
        ctx.metrics.registry.unregister(collector)
        ctx.parts.mqtt = None

    return cleanup
