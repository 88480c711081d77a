"""MQTT against a private Mosquitto: topics and payloads, a broker outage, feeder signals in.

The broker outage lasts ``CSMS_TELEMETRY_MQTT_OUTAGE_S`` seconds (default 2; the issue's
60 s works the same way, only slower: ``bench.telemetry --outage 60`` runs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
from ocpp_driver import drive_v16, wait_until
from servers import MosquittoServer

from csms.app import running
from csms.config import MqttConfig
from csms.core.events import Event, FeederLimitSignal, FeederMeterReading, StatusChanged
from csms.telemetry.mqtt import MqttBridge
from csms.telemetry.plugin import mqtt_plugin
from tests.conftest import make_settings

OUTAGE_S = float(os.environ.get("CSMS_TELEMETRY_MQTT_OUTAGE_S", "2"))


class Collector:
    """A persistent-session QoS 1 subscriber that records every message (survives broker restarts)."""

    def __init__(self, port: int, topic: str) -> None:
        self.port, self.topic = port, topic
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self.connected = asyncio.Event()

    @property
    def event_ids(self) -> set[str]:
        return {m[1]["event_id"] for m in self.messages}

    async def run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", self.port, identifier="test-collector",
                                          clean_session=False) as client:
                    await client.subscribe(self.topic, qos=1)
                    self.connected.set()
                    async for m in client.messages:
                        assert isinstance(m.payload, bytes)
                        self.messages.append((str(m.topic), orjson.loads(m.payload), m.retain))
            except aiomqtt.MqttError:
                self.connected.clear()
                await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def collecting(port: int, topic: str = "#") -> AsyncIterator[Collector]:
    collector = Collector(port, topic)
    task = asyncio.create_task(collector.run())
    await asyncio.wait_for(collector.connected.wait(), 10)
    try:
        yield collector
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def status(i: int) -> StatusChanged:
    return StatusChanged(station_id=f"CP{i}", evse_id=1, connector_id=1, status="Charging")


async def test_broker_outage_loses_no_event(mosquitto: MosquittoServer) -> None:
    cfg = MqttConfig(url=mosquitto.url, topic_prefix="city", qos=1, reconnect_max_s=0.5, timeout_s=2)
    bridge = MqttBridge(cfg)
    bridge.start()
    async with collecting(mosquitto.port, "city/#") as sub:
        events = [status(i) for i in range(300)]
        for ev in events[:100]:
            bridge.offer_event(ev)
        await wait_until(lambda: len(sub.event_ids) == 100)
        await asyncio.to_thread(mosquitto.stop)
        for ev in events[100:200]:
            bridge.offer_event(ev)
        await asyncio.sleep(OUTAGE_S)  # the outage
        assert len(bridge.outbox) >= 100 and not bridge.stats.connected
        await asyncio.to_thread(mosquitto.start)
        for ev in events[200:]:
            bridge.offer_event(ev)
        await wait_until(lambda: sub.event_ids == {e.event_id for e in events}, timeout_s=20)
    await bridge.close()
    assert bridge.stats.dropped == 0 and not bridge.outbox
    topic, body, _ = next(m for m in sub.messages if m[1]["event_id"] == events[150].event_id)
    assert topic == "city/stations/CP150/evse/1/connector/1/status"
    assert body["status"] == "Charging" and body["station"] == "CP150"


async def test_csms_publishes_station_events_with_retained_status(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, mqtt={"url": mosquitto.url, "topic_prefix": "csms"})
    async with running(settings, plugins=[mqtt_plugin]) as app, collecting(mosquitto.port, "csms/#") as sub:
        await drive_v16(app.ocpp_url, "CP+1#", samples=2)  # "+" and "#" must not break topics
        await wait_until(lambda: any(t.endswith("/sessions/ended") for t, _, _ in sub.messages))
        await wait_until(lambda: not app.parts.mqtt.outbox)
    topics = [t for t, _, _ in sub.messages]
    base = "csms/stations/CP_1_"
    for suffix in ("/connection", "/boot", "/evse/1/connector/1/status", "/sessions/started",
                   "/sessions/ended", "/evse/1/meter"):
        assert base + suffix in topics, suffix
    ended = next(b for t, b, _ in sub.messages if t.endswith("/sessions/ended"))
    assert ended["energy_wh"] == 500.0 and ended["station"] == "CP+1#" and ended["event_id"]
    meter = [b for t, b, _ in sub.messages if t.endswith("/meter")]
    assert meter[-1]["power_w"] == 10900.0 and meter[-1]["current_a"] == [16.0, 16.0, 16.0]
    async with collecting(mosquitto.port, f"{base}/evse/1/connector/1/status") as late:  # retained
        await wait_until(lambda: late.messages)
    assert late.messages[0][1]["status"] == "Finishing" and late.messages[0][2] is True


async def test_feeder_meter_and_limit_messages_become_bus_events(mosquitto: MosquittoServer) -> None:
    received: list[Event] = []
    bridge = MqttBridge(MqttConfig(url=mosquitto.url, topic_prefix="grid"), on_event=received.append)
    bridge.start()
    await wait_until(lambda: bridge.stats.connected)
    await asyncio.sleep(0.2)  # the bridge subscribes right after connecting
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
        reading = b'{"current_a": [100, 110.5, 90], "event_id": "m1"}'
        await client.publish("grid/feeders/F1/meter", reading, qos=1)
        await client.publish("grid/feeders/F1/limit", b'{"limit_a": 250}', qos=1)
        await client.publish("grid/feeders/F2/limit", b'{"limit_a": null}', qos=1)
        await client.publish("grid/feeders/F1/meter", b'{"current_a": "lots"}', qos=1)
        await client.publish("grid/feeders/F1/meter", b"not json", qos=1)
    await wait_until(lambda: len(received) == 3 and bridge.stats.invalid == 2)
    await bridge.close()
    meter, limit, cleared = received
    assert isinstance(meter, FeederMeterReading) and meter.node_id == "F1" and meter.event_id == "m1"
    assert meter.current_a == (100.0, 110.5, 90.0)
    assert isinstance(limit, FeederLimitSignal) and (limit.node_id, limit.limit_a) == ("F1", 250.0)
    assert isinstance(cleared, FeederLimitSignal) and (cleared.node_id, cleared.limit_a) == ("F2", None)


def test_queued_messages_cost_their_own_size_not_a_serializer_buffer() -> None:
    """An outage fills the outbox: 10,000 small messages must not pin 4 KiB each (orjson's buffer)."""
    bridge = MqttBridge(MqttConfig(url="mqtt://127.0.0.1:1", topic_prefix="city"))  # never started
    events = [status(i) for i in range(10_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for ev in events:
            bridge.offer_event(ev)
        per_message = (tracemalloc.get_traced_memory()[0] - before) / len(events)
    finally:
        tracemalloc.stop()
    assert len(bridge.outbox) == 10_000
    assert per_message < 1024, f"{per_message:.0f} bytes per queued message"
