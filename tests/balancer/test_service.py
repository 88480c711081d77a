"""The balancer service with a recording sender (a fake we wrote, not a mock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from csms.balancer import service as balancer_service
from csms.balancer.plugin import apply_grid_signal
from csms.balancer.service import BalancerService
from csms.balancer.topology import Topology, topology_from_config
from csms.bus import Bus
from csms.core.commands import ChargingLimit, CommandResult, CommandStatus
from csms.core.events import (
    FeederLoadChanged,
    FeederMeterReading,
    MeterSampled,
    StationConnected,
    StationDisconnected,
    TransactionEnded,
    TransactionStarted,
)
from csms.core.feeders import ChargerLoad, FeederLoad
from csms.core.model import MeterSample, SampledValue, Transaction
from csms.errors import CallTimeout
from ocppj.versions import OcppVersion

T0 = datetime(2026, 11, 29, tzinfo=UTC)


class RecordingSender:
    def __init__(self, reject: set[str] | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.reject = reject or set()
        self.order: list[str] = []

    async def set_limit(self, station_id: str, evse_id: int, limit: ChargingLimit) -> CommandResult:
        self.calls.append({
            "station_id": station_id, "evse_id": evse_id, "limit_a": limit.amps, "tx_id": limit.tx_id,
            "profile_id": limit.profile_id, "stack_level": limit.stack_level, "number_phases": limit.phases,
        })
        self.order.append(f"{station_id}:{limit.amps}")
        if station_id in self.reject:
            raise CallTimeout("no answer")
        await asyncio.sleep(0)
        return CommandResult(CommandStatus.ACCEPTED)


def topology(limit_a: float = 32.0) -> Topology:
    return topology_from_config({
        "nodes": [{"id": "T1", "limit_a": 100.0}, {"id": "F1", "parent": "T1", "limit_a": limit_a}],
        "evses": [{"station_id": f"S{i}", "evse_id": 1, "node": "F1", "max_a": 32.0} for i in range(3)],
    })


def tx(station: str, ended: bool = False) -> Transaction:
    return Transaction(station, f"tx-{station}", 1, 1, "T", T0, T0 if ended else None,
                       protocol=OcppVersion.V201)


def tx_limits(sender: RecordingSender) -> dict[str, float]:
    return {c["station_id"]: c["limit_a"] for c in sender.calls if c["tx_id"] is not None}


async def test_sessions_share_the_feeder_and_never_exceed_it() -> None:
    sender = RecordingSender()
    svc = BalancerService(topology(32.0), sender, min_interval_per_station_s=0)
    bus = Bus()
    svc.attach(bus)
    for s in ("S0", "S1"):
        bus.publish(TransactionStarted(station_id=s, transaction=tx(s)))
    await svc.rebalance()
    assert tx_limits(sender) == {"S0": 16.0, "S1": 16.0}
    bus.publish(TransactionStarted(station_id="S2", transaction=tx("S2")))
    await svc.rebalance()
    limits = tx_limits(sender)
    assert sum(limits.values()) <= 32.0 and sorted(limits) == ["S0", "S1", "S2"]
    assert sender.order[-1].startswith("S2")  # decreases first, the new session's increase last
    bus.publish(TransactionEnded(station_id="S2", transaction=tx("S2", ended=True)))
    await svc.rebalance()
    after = tx_limits(sender)
    assert after["S0"] == after["S1"] == 16.0


async def test_failed_profile_counts_the_station_at_its_maximum() -> None:
    sender = RecordingSender(reject={"S0"})
    svc = BalancerService(topology(40.0), sender, min_interval_per_station_s=0)
    bus = Bus()
    svc.attach(bus)
    for s in ("S0", "S1"):
        bus.publish(TransactionStarted(station_id=s, transaction=tx(s)))
    await svc.rebalance()
    alloc = await svc.rebalance()
    assert svc.failed_count >= 1
    assert alloc.evse("S0", 1).reason == "fixed" and alloc.evse("S1", 1).current_a == 8.0  # 40 - 32


async def test_disconnected_station_keeps_its_last_accepted_limit_as_load() -> None:
    sender = RecordingSender()
    svc = BalancerService(topology(32.0), sender, min_interval_per_station_s=0)
    bus = Bus()
    svc.attach(bus)
    for s in ("S0", "S1"):
        bus.publish(TransactionStarted(station_id=s, transaction=tx(s)))
    await svc.rebalance()
    bus.publish(StationDisconnected(station_id="S0", protocol=OcppVersion.V201))
    alloc = await svc.rebalance()
    assert alloc.evse("S0", 1).current_a == 16.0 and alloc.evse("S1", 1).current_a == 16.0


async def test_limit_cut_reduces_allocations_and_connect_installs_failsafe_default() -> None:
    sender = RecordingSender()
    svc = BalancerService(topology(32.0), sender, min_interval_per_station_s=0)
    bus = Bus()
    svc.attach(bus)
    bus.publish(StationConnected(station_id="S0", protocol=OcppVersion.V16))
    await asyncio.sleep(0.01)
    default = [c for c in sender.calls if c["tx_id"] is None]
    assert default and default[0]["limit_a"] <= 32.0 / 3 + 1e-9  # everyone-at-once share
    for s in ("S0", "S1"):
        bus.publish(TransactionStarted(station_id=s, transaction=tx(s)))
    bus.publish(MeterSampled(station_id="S0", sample=MeterSample(
        "S0", 1, 1, T0, (SampledValue("Current.Import", 15.0, "A", "L1"),), "tx-S0")))
    await svc.rebalance()
    svc.set_limit("F1", 20.0)
    await svc.rebalance()
    assert tx_limits(sender) == {"S0": 10.0, "S1": 10.0}
    view = {n["id"]: n for n in svc.feeders_view()}
    assert view["F1"]["limit_a"] == 20.0 and view["F1"]["allocated_a"] == 20.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watched(
    topo: Topology, clock: FakeClock, *, max_age_s: float = 60.0, sessions: tuple[str, ...] = ("S0",)
) -> tuple[BalancerService, RecordingSender]:
    """A service with the meter watch on ``max_age_s`` and a session running on each of ``sessions``."""
    sender = RecordingSender()
    svc = BalancerService(topo, sender, min_interval_per_station_s=0, clock=clock, meter_max_age_s=max_age_s)
    bus = Bus()
    svc.attach(bus)
    for s in sessions:
        bus.publish(TransactionStarted(station_id=s, transaction=tx(s)))
    return svc, sender


async def test_a_silent_feeder_meter_pauses_the_node_until_it_reports_again() -> None:
    clock = FakeClock()
    svc, sender = watched(topology(32.0), clock, sessions=("S0", "S1"))
    svc.meter_reading("F1", 12.0)  # 12 A of other load: 20 A left for the two sessions
    await svc.rebalance()
    assert tx_limits(sender) == {"S0": 10.0, "S1": 10.0}
    clock.now += 60.0  # exactly the allowed age: still trusted
    await svc.rebalance()
    assert svc.stale_meters == set() and tx_limits(sender) == {"S0": 10.0, "S1": 10.0}
    clock.now += 1.0
    alloc = await svc.rebalance()
    assert svc.stale_meters == {"F1"}
    assert all(alloc.evse(s, 1).current_a == 0.0 for s in ("S0", "S1"))
    assert tx_limits(sender) == {"S0": 0.0, "S1": 0.0}  # sent: the stations pause
    assert {n["id"]: n["meter_stale"] for n in svc.feeders_view()} == {"T1": False, "F1": True}
    svc.meter_reading("F1", 2.0, age_s=120.0)  # a replayed old reading does not count
    await svc.rebalance()
    assert svc.stale_meters == {"F1"} and tx_limits(sender) == {"S0": 0.0, "S1": 0.0}
    svc.meter_reading("F1", 2.0)
    await svc.rebalance()
    assert svc.stale_meters == set() and tx_limits(sender) == {"S0": 15.0, "S1": 15.0}


async def test_meter_watch_is_off_at_zero_and_only_watches_metered_nodes() -> None:
    clock = FakeClock()
    svc, sender = watched(topology(32.0), clock, max_age_s=0.0)
    svc.meter_reading("F1", 12.0)
    clock.now += 10_000.0
    await svc.rebalance()
    assert svc.stale_meters == set() and tx_limits(sender) == {"S0": 20.0}
    unread = BalancerService(topology(32.0), RecordingSender(), clock=clock, meter_max_age_s=1.0)
    clock.now += 10_000.0  # no reading ever came: the configured base load stays
    await unread.rebalance()
    assert unread.stale_meters == set()


async def test_an_older_reading_than_the_last_is_ignored() -> None:
    clock = FakeClock()
    svc, sender = watched(topology(32.0), clock)
    svc.meter_reading("F1", 20.0)
    svc.meter_reading("F1", 2.0, age_s=5.0)  # arrived late, taken before the one above
    await svc.rebalance()
    assert tx_limits(sender) == {"S0": 12.0}


async def test_a_bus_reading_is_aged_by_its_own_timestamp() -> None:
    clock = FakeClock()
    svc, sender = watched(topology(32.0), clock)
    stamped = datetime.now(UTC) - timedelta(seconds=90)  # e.g. a retained MQTT message
    apply_grid_signal(svc, FeederMeterReading(node_id="F1", current_a=(2.0, 2.0, 2.0), ts=stamped))
    await svc.rebalance()
    assert svc.stale_meters == {"F1"} and tx_limits(sender) == {"S0": 0.0}
    apply_grid_signal(svc, FeederMeterReading(node_id="F1", current_a=(2.0, 2.0, 2.0)))
    await svc.rebalance()
    assert svc.stale_meters == set() and tx_limits(sender) == {"S0": 30.0}
    apply_grid_signal(svc, FeederMeterReading(node_id="NOPE", current_a=(1.0, 1.0, 1.0)))  # logged, ignored
    await svc.rebalance()
    assert svc.stale_meters == set()


def metered_topology(**f1: object) -> Topology:
    return topology_from_config({
        "nodes": [{"id": "T1", "limit_a": 100.0}, {"id": "F1", "parent": "T1", **f1}],
        "evses": [{"station_id": "S0", "evse_id": 1, "node": "F1", "max_a": 32.0}],
    })


async def stale_service(topo: Topology, clock: FakeClock) -> tuple[BalancerService, RecordingSender]:
    svc, sender = watched(topo, clock)
    svc.meter_reading("F1", 2.0)
    clock.now += 61.0
    await svc.rebalance()
    assert svc.stale_meters == {"F1"}
    return svc, sender


async def test_a_stale_node_stays_full_when_its_limit_changes() -> None:
    clock = FakeClock()
    svc, sender = await stale_service(metered_topology(limit_a=32.0), clock)
    assert tx_limits(sender) == {"S0": 0.0}
    svc.set_limit("F1", 64.0)  # e.g. a grid signal raising it while the meter is dead
    alloc = await svc.rebalance()
    assert alloc.evse("S0", 1).current_a == 0.0
    svc.set_limit("F1", None)
    await svc.rebalance()
    svc.set_limit("F1", 40.0)
    assert (await svc.rebalance()).evse("S0", 1).current_a == 0.0


async def test_a_stale_unlimited_node_is_filled_once_it_gets_a_limit() -> None:
    clock = FakeClock()
    svc, _sender = await stale_service(metered_topology(), clock)
    assert (await svc.rebalance()).evse("S0", 1).current_a == 32.0  # nothing to fill: T1 has room
    svc.set_limit("F1", 20.0)
    assert (await svc.rebalance()).evse("S0", 1).current_a == 0.0


async def test_a_stale_kw_limited_node_is_full() -> None:
    clock = FakeClock()
    svc, _sender = await stale_service(metered_topology(limit_kw=22.0, limit_a=100.0, margin_a=2.0), clock)
    assert (await svc.rebalance()).evse("S0", 1).current_a == 0.0
    svc.set_limit("F1", 200.0)  # the kW limit still binds
    assert (await svc.rebalance()).evse("S0", 1).current_a == 0.0


async def test_a_metered_node_is_watched_from_start_up() -> None:
    clock = FakeClock()
    svc, _sender = watched(metered_topology(limit_a=32.0, metered=True), clock)
    assert (await svc.rebalance()).evse("S0", 1).current_a == 32.0  # a minute of grace for the meter
    clock.now += 61.0  # it never reported
    assert (await svc.rebalance()).evse("S0", 1).current_a == 0.0
    assert svc.stale_meters == {"F1"}


class LogRecorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def warning(self, event: str, **_kw: Any) -> None:
        self.events.append(event)

    info = warning


async def test_readings_from_a_meter_whose_clock_is_behind_are_not_used_and_logged_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = LogRecorder()
    monkeypatch.setattr(balancer_service, "log", recorder)
    clock = FakeClock()
    svc, _sender = watched(metered_topology(limit_a=32.0), clock)
    for _ in range(3):  # every reading stamped an hour ago
        svc.meter_reading("F1", 2.0, age_s=3600.0)
        clock.now += 5.0
    assert (await svc.rebalance()).evse("S0", 1).current_a == 0.0 and svc.stale_meters == {"F1"}
    assert [e for e in recorder.events if "reading too old" in e] == [
        "feeder meter reading too old, not used (is the meter's clock right?)"]
    svc.meter_reading("F1", 2.0)
    assert (await svc.rebalance()).evse("S0", 1).current_a == 30.0


async def test_feeder_loads_are_typed_and_unrounded_and_the_view_rounds_for_display() -> None:
    svc = BalancerService(topology(32.0), RecordingSender(), min_interval_per_station_s=0)
    bus = Bus()
    svc.attach(bus)
    bus.publish(TransactionStarted(station_id="S0", transaction=tx("S0")))
    bus.publish(MeterSampled(station_id="S0", sample=MeterSample(
        "S0", 1, 1, T0, (SampledValue("Current.Import", 15.004, "A", "L1"),), "tx-S0")))
    svc.meter_reading("F1", (0.1, 0.2, 0.0))  # 0.1 + 15.004 carries float noise
    await svc.rebalance()
    t1, f1 = svc.feeder_loads()
    assert t1 == FeederLoad("T1", None, 100.0, 100.0, 15.004, 31.8, 100.0 - 31.8)
    assert (f1.node_id, f1.parent_id, f1.limit_a, f1.available_a) == ("F1", "T1", 32.0, 32.0)
    assert f1.measured_a == 0.1 + 15.004 and f1.allocated_a == 31.8 and f1.headroom_a == 0.0
    assert f1.chargers == (
        ChargerLoad("S0", 1, 31.8, "node:F1", 15.004, True),
        ChargerLoad("S1", 1, 0.0, "idle", 0.0, False),
        ChargerLoad("S2", 1, 0.0, "idle", 0.0, False),
    )
    shown = {n["id"]: n for n in svc.feeders_view(rounded=True)}
    assert (shown["T1"]["measured_a"], shown["F1"]["measured_a"]) == (15.0, 15.1)
    assert shown["F1"]["chargers"][0] == {
        "station_id": "S0", "evse_id": 1, "allocated_a": 31.8, "reason": "node:F1", "measured_a": 15.0,
        "charging": True,
    }
    raw = {n["id"]: n for n in svc.feeders_view()}["F1"]
    assert raw["measured_a"] == f1.measured_a and raw["chargers"][0]["measured_a"] == 15.004
    event = FeederLoadChanged.of(f1)
    assert (event.node_id, event.parent_id, event.limit_a) == ("F1", "T1", 32.0)
    assert (event.measured_a, event.allocated_a, event.headroom_a) == (f1.measured_a, 31.8, 0.0)
    assert event.evses == (("S0", 1, 31.8), ("S1", 1, 0.0), ("S2", 1, 0.0))
    assert event.rounded().measured_a == 15.1 and event.rounded().event_id == event.event_id


@pytest.mark.parametrize(
    ("ev_max", "expected"),
    [
        ({}, {"S0": 16.0, "S1": 16.0}),  # no needs told: the feeder is shared evenly
        ({"S0": 10.0}, {"S0": 10.0, "S1": 22.0}),  # the EV takes at most 10 A: the rest goes to S1
        ({"S0": 10.0, "S1": 6.0}, {"S0": 10.0, "S1": 6.0}),  # both capped below their share
        ({"S0": 40.0}, {"S0": 16.0, "S1": 16.0}),  # a cap above the share changes nothing
    ],
)
async def test_the_evs_maximum_current_caps_its_evse_allocation(
    ev_max: dict[str, float], expected: dict[str, float]
) -> None:
    sender = RecordingSender()
    svc = BalancerService(
        topology(32.0), sender, min_interval_per_station_s=0,
        ev_max_a=lambda station_id, evse_id: ev_max.get(station_id) if evse_id == 1 else None,
    )
    bus = Bus()
    svc.attach(bus)
    for s in ("S0", "S1"):
        bus.publish(TransactionStarted(station_id=s, transaction=tx(s)))
    assert {d.station_id: d.ev_max_a for d in svc.demands()} == {s: ev_max.get(s) for s in ("S0", "S1")}
    await svc.rebalance()
    assert tx_limits(sender) == expected
