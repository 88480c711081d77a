"""Events relayed between core nodes come back equal to what was sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from csms.bus import Bus
from csms.cluster.events import ClusterBus, EventCodec, EventRelay
from csms.core import events as ev
from csms.core.model import MeterSample, SampledValue, StationInfo, Transaction
from ocppj.versions import OcppVersion

T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


def samples() -> list[ev.Event]:
    tx = Transaction("CP-1", "17", 2, 1, "TAG-1", T0, stopped_at=T0 + timedelta(hours=1), meter_start_wh=10.5,
                     meter_stop_wh=7410.0, stop_reason="EVDisconnected", protocol=OcppVersion.V201,
                     last_seq_no=4, flags=("priced",), reservation_id=3)
    sample = MeterSample("CP-1", 2, 1, T0, (SampledValue("Power.Active.Import", 7200.0, "W"),
                                            SampledValue("Current.Import", 16.0, "A", phase="L1")), "17")
    return [
        ev.StationConnected(station_id="CP-1", protocol=OcppVersion.V16, remote="10.0.0.7"),
        ev.StationDisconnected(station_id="CP-1", protocol=OcppVersion.V201, code=1006),
        ev.StationBooted(station_id="CP-1", info=StationInfo("ACME", "X1", None, "1.2"), accepted=True),
        ev.StatusChanged(station_id="CP-1", evse_id=1, connector_id=1, status="Charging"),
        ev.TransactionStarted(station_id="CP-1", transaction=tx),
        ev.TransactionEnded(station_id="CP-1", transaction=tx),
        ev.MeterSampled(station_id="CP-1", sample=sample),
        ev.CommandFailed(station_id="CP-1", action="Reset", reason="timeout"),
    ]


def test_every_relayed_event_round_trips_equal() -> None:
    codec = EventCodec()
    sent = samples()
    assert codec.decode(codec.encode(sent)) == sent


def test_an_unknown_event_type_is_skipped_and_the_rest_kept() -> None:
    codec = EventCodec()
    data = codec.encode(samples()[:1]).replace(b'"StationConnected"', b'"FromANewerCore"', 1)
    assert codec.decode(data + b"") == []
    mixed = b"[" + data[1:-1] + b"," + codec.encode(samples()[3:4])[1:]
    assert [type(e) for e in codec.decode(mixed)] == [ev.StatusChanged]


def test_cluster_bus_gives_remote_events_only_to_cluster_subscribers() -> None:
    bus = Bus()
    cluster = ClusterBus(bus)
    local_only: list[ev.Event] = []
    everywhere: list[ev.Event] = []
    relayed: list[ev.Event] = []
    bus.subscribe(local_only.append, ev.StatusChanged)
    cluster.subscribe(everywhere.append, ev.StatusChanged)
    cluster.relay_to(relayed.append)
    here = samples()[3]
    there = ev.StatusChanged(station_id="CP-2", evse_id=1, connector_id=1, status="Faulted")
    bus.publish(here)
    cluster.deliver(there)
    assert local_only == [here]
    assert everywhere == [here, there]
    assert relayed == [here]  # this core's own events go out once; remote ones are never sent back


async def test_relay_batches_one_message_per_loop_iteration() -> None:
    import asyncio

    messages: list[bytes] = []

    def publish(data: bytes) -> bool:
        messages.append(data)
        return True

    relay = EventRelay(publish)
    sent = samples()
    for e in sent:
        relay.offer(e)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(messages) == 1
    assert relay.receive(messages[0]) == sent
