"""The event -> output registry: complete, and its builders make the documented points and messages."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from csms.core import events
from csms.core.events import (
    AlarmChanged,
    ClockOffsetMeasured,
    CommandFailed,
    Event,
    FeederLimitSignal,
    FeederLoadChanged,
    FeederMeterReading,
    IdTagsChanged,
    LocalListSynced,
    MessageExchanged,
    MeterSampled,
    ReservationConsumed,
    SecurityEventReported,
    StationBooted,
    StationConnected,
    StationDisconnected,
    StationReported,
    StatusChanged,
    TransactionEnded,
    TransactionStarted,
)
from csms.core.model import MeterSample, SampledValue, StationInfo, Transaction
from csms.telemetry.mqtt import MQTT, MQTT_EVENTS, event_message
from csms.telemetry.outputs import EVENTS, ConsoleUpdate, PerEvent, builder_name, console_events, table
from csms.telemetry.points import INFLUX, POINT_EVENTS, StationTags, event_points
from ocppj.versions import OcppVersion

TS = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
NS = 1_772_366_400_123_456_000
MS = NS // 1_000_000
TAGS = StationTags("ACME", "AC 22", "ocpp1.6")
TX = Transaction("CP1", "7", 1, 2, "TAG", TS, TS + timedelta(minutes=30), 1000.0, 8500.0, "Local")
STAMP = '"event_id":"E","ts":"2026-03-01T12:00:00.123456Z"'
STATION_TAGS = "model=AC\\ 22,protocol=ocpp1.6,station=CP1,vendor=ACME"
TX_BODY = (
    '"tx_id":"7","evse":1,"connector":2,"started_at":"2026-03-01T12:00:00.123456Z",'
    '"stopped_at":"2026-03-01T12:30:00.123456Z","meter_start_wh":1000.0,"meter_stop_wh":8500.0,'
    '"energy_wh":7500.0,"stop_reason":"Local","protocol":"ocpp1.6"'
)
TX_FIELDS = (
    'count=1i,tx_id="7",meter_start_wh=1000.0,meter_stop_wh=8500.0,energy_wh=7500.0,duration_s=1800.0,'
    'stop_reason="Local"'
)


def sv(measurand: str, value: float, unit: str, phase: str | None = None) -> SampledValue:
    return SampledValue(measurand, value, unit, phase, "Sample.Periodic", None)


def concrete_events() -> set[type[Event]]:
    return {
        cls for _, cls in inspect.getmembers(events, inspect.isclass)
        if issubclass(cls, Event) and cls is not Event and cls.__module__ == events.__name__
    }


def test_every_concrete_event_class_is_registered() -> None:
    assert set(EVENTS) == concrete_events()


def test_every_registered_event_has_one_builder_field_in_registry_order() -> None:
    assert [f.name for f in fields(PerEvent)] == [builder_name(cls) for cls in EVENTS]


@pytest.mark.parametrize(("cls", "name"), [
    (MeterSampled, "meter_sampled"),
    (SecurityEventReported, "security_event_reported"),
    (FeederLoadChanged, "feeder_load_changed"),
])
def test_builder_names_are_the_snake_case_class_names(cls: type[Event], name: str) -> None:
    assert builder_name(cls) == name


def test_a_table_leaves_out_the_kinds_an_output_ignores_and_keeps_registry_order() -> None:
    def named(ev: Event, suffix: str) -> str:
        return type(ev).__name__ + suffix

    builders: dict[str, Callable[[Event, str], str] | None] = {builder_name(cls): None for cls in EVENTS}
    builders.update(status_changed=named, feeder_meter_reading=named)
    per_event: PerEvent[[str], str] = PerEvent(**builders)
    tab = table(per_event)
    assert list(tab) == [StatusChanged, FeederMeterReading]
    ev = StatusChanged(station_id="CP1", evse_id=1, connector_id=1, status="Available")
    assert tab[type(ev)](ev, "!") == "StatusChanged!"


def test_outputs_subscribe_to_the_kinds_they_build() -> None:
    no_output = (ClockOffsetMeasured, CommandFailed, IdTagsChanged, LocalListSynced, ReservationConsumed)
    not_points = (MessageExchanged, StationReported, AlarmChanged, *no_output)
    not_mqtt = (MessageExchanged, FeederLimitSignal, FeederMeterReading, *no_output)  # signals are not echoed
    assert tuple(cls for cls in EVENTS if cls not in not_points) == POINT_EVENTS
    assert tuple(cls for cls in EVENTS if cls not in not_mqtt) == MQTT_EVENTS


def test_console_updates_per_event_kind() -> None:
    assert console_events(ConsoleUpdate.STATION, ConsoleUpdate.SESSIONS) == (
        StationConnected, StationDisconnected, StationBooted, StatusChanged, TransactionStarted,
        TransactionEnded, MeterSampled, ClockOffsetMeasured,
    )
    assert console_events(ConsoleUpdate.SESSIONS) == (TransactionStarted, TransactionEnded)
    assert console_events(ConsoleUpdate.FEEDER) == (FeederLoadChanged,)
    assert console_events(ConsoleUpdate.NONE) == (
        SecurityEventReported, MessageExchanged, FeederLimitSignal, FeederMeterReading, StationReported,
        CommandFailed, AlarmChanged, IdTagsChanged, LocalListSynced, ReservationConsumed,
    )


Message = tuple[str, str, bool] | None
CASES: list[tuple[Event, list[str], Message]] = [
    (
        StationConnected(station_id="CP1", protocol=OcppVersion.V201, event_id="E", ts=TS),
        [f'connection,{STATION_TAGS.replace("1.6", "2.0.1")} connected=1i,event="connected" {NS}'],
        ("city/stations/CP1/connection",
         f'{{{STAMP},"station":"CP1","connected":true,"protocol":"ocpp2.0.1"}}', True),
    ),
    (
        StationDisconnected(station_id="CP1", protocol=OcppVersion.V16, code=1006, event_id="E", ts=TS),
        [f'connection,{STATION_TAGS} connected=0i,event="disconnected",close_code=1006i {NS}'],
        ("city/stations/CP1/connection",
         f'{{{STAMP},"station":"CP1","connected":false,"protocol":"ocpp1.6","code":1006}}', True),
    ),
    (
        StationBooted(station_id="CP1", info=StationInfo(vendor="V", model="M", serial_number="S1",
                                                          firmware_version="1.2"),
                      accepted=True, event_id="E", ts=TS),
        [f'boot,model=M,protocol=ocpp1.6,station=CP1,vendor=V accepted=true,firmware="1.2",serial="S1" {NS}'],
        ("city/stations/CP1/boot", f'{{{STAMP},"station":"CP1","vendor":"V","model":"M","serial":"S1",'
         '"firmware":"1.2","accepted":true}', False),
    ),
    (
        StatusChanged(station_id="CP1", evse_id=1, connector_id=2, status="Faulted",
                      error_code="GroundFailure", event_id="E", ts=TS),
        [f'status,connector=2,evse=1,{STATION_TAGS} status="Faulted",code=8i,'
         f'error_code="GroundFailure" {NS}'],
        ("city/stations/CP1/evse/1/connector/2/status", f'{{{STAMP},"station":"CP1","evse":1,"connector":2,'
         '"status":"Faulted","error_code":"GroundFailure"}', True),
    ),
    (
        TransactionStarted(station_id="CP1", transaction=TX, event_id="E", ts=TS),
        [f"session,connector=2,event=started,evse=1,{STATION_TAGS} {TX_FIELDS},station_time={MS}i {NS}"],
        ("city/stations/CP1/sessions/started", f'{{{STAMP},"station":"CP1",{TX_BODY}}}', False),
    ),
    (
        TransactionEnded(station_id="CP1", transaction=TX, event_id="E", ts=TS),
        [f"session,connector=2,event=ended,evse=1,{STATION_TAGS} {TX_FIELDS},"
         f"station_time={MS + 1800 * 10**3}i {NS}"],  # at the receive time
        ("city/stations/CP1/sessions/ended", f'{{{STAMP},"station":"CP1",{TX_BODY}}}', False),
    ),
    (
        MeterSampled(station_id="CP1", sample=MeterSample("CP1", 2, 1, TS, (
            sv("Energy.Active.Import.Register", 1500, "Wh"), sv("Current.Import", 13, "A", "L1"),
        ), "42"), event_id="E", ts=TS),
        [f"meter,connector=1,context=Sample.Periodic,evse=2,{STATION_TAGS} "
         f'energy_wh=1500.0,current_l1_a=13.0,tx_id="42",station_time={MS}i {NS + 14}'],  # event id "E": 0xE
        ("city/stations/CP1/evse/2/meter", f'{{{STAMP},"station":"CP1","evse":2,"connector":1,'
         '"sampled_at":"2026-03-01T12:00:00.123456Z","tx_id":"42","power_w":null,"energy_wh":1500,'
         '"current_a":[13,0.0,0.0],"voltage_v":null,"soc_pct":null}', False),
    ),
    (
        SecurityEventReported(station_id="CP1", kind="TamperDetectionActivated", tech_info="lid",
                              event_id="E", ts=TS),
        [f'security_event,{STATION_TAGS} kind="TamperDetectionActivated",tech_info="lid" {NS}'],
        ("city/stations/CP1/security",
         f'{{{STAMP},"station":"CP1","kind":"TamperDetectionActivated","tech_info":"lid"}}', False),
    ),
    (
        MessageExchanged(station_id="CP1", direction="in", action="Heartbeat", message_type="Call",
                         unique_id="1", event_id="E", ts=TS),
        [],
        None,
    ),
    (
        FeederLoadChanged(node_id="F1", parent_id="SUB", limit_a=200, measured_a=50.0, allocated_a=100.0,
                          headroom_a=100.0, evses=(("CP1", 1, 16.0),), event_id="E", ts=TS),
        [f"feeder,feeder=F1,parent=SUB,site=CITY limit_a=200.0,load_a=50.0,allocated_a=100.0,"
         f"headroom_a=100.0,utilisation=0.5,evses=1i {NS}",
         "allocation,evse=1,feeder=F1,model=AC\\ 22,protocol=ocpp1.6,site=CITY,station=CP1,vendor=ACME "
         f"limit_a=16.0 {NS}"],
        ("city/feeders/F1/load", f'{{{STAMP},"feeder":"F1","parent":"SUB","limit_a":200,"measured_a":50.0,'
         '"allocated_a":100.0,"headroom_a":100.0,"meter_stale":false,'
         '"evses":[{"station":"CP1","evse":1,"allocated_a":16.0}]}', False),
    ),
    (
        FeederLimitSignal(node_id="F1", limit_a=120.5, event_id="E", ts=TS),
        [f"feeder_limit,feeder=F1 limit_a=120.5,cleared=false {NS}"],
        None,
    ),
    (
        FeederMeterReading(node_id="F1", current_a=(1.0, 2.0, 3.0), event_id="E", ts=TS),
        [f"feeder_meter,feeder=F1 current_l1_a=1.0,current_l2_a=2.0,current_l3_a=3.0,current_a=3.0 {NS}"],
        None,
    ),
    (StationReported(station_id="CP1", action="DataTransfer", data={"vendorId": "V"}, event_id="E", ts=TS,
                     record_id=7),
     [], ("city/stations/CP1/events/DataTransfer",
          f'{{{STAMP},"station":"CP1","id":7,"type":"DataTransfer","station_time":null,'
          '"data":{"vendorId":"V"}}', False)),
    (ClockOffsetMeasured(station_id="CP1", offset_s=7200.0, event_id="E", ts=TS), [], None),
    (CommandFailed(station_id="CP1", action="Reset", reason="timeout", event_id="E", ts=TS), [], None),
    (IdTagsChanged(id_tags=("TAG1",), event_id="E", ts=TS), [], None),
    (LocalListSynced(station_id="CP1", ok=False, detail="Failed", event_id="E", ts=TS), [], None),
    (ReservationConsumed(station_id="CP1", reservation_id=3, tx_id="42", event_id="E", ts=TS), [], None),
    (AlarmChanged(station_id="CP1", alarm_id=1, kind="connector_faulted", severity="major", state="raised",
                  detail="EVSE 1 connector 1 faulted", raised_at=TS, event_id="E", ts=TS), [],
     ("city/alarms/connector_faulted/CP1",
      f'{{{STAMP},"station":"CP1","id":1,"kind":"connector_faulted","charger_id":"CP1","state":"raised",'
      '"severity":"major","detail":"EVSE 1 connector 1 faulted","raised_at":"2026-03-01T12:00:00.123456Z",'
      '"cleared_at":null,"acknowledged_at":null,"acknowledged_by":null}', False)),
]


def test_the_table_covers_every_event_kind() -> None:
    assert {type(ev) for ev, _, _ in CASES} == set(EVENTS)


@pytest.mark.parametrize(("ev", "lines", "message"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_registry_builders_make_the_documented_points_and_messages(
    ev: Event, lines: list[str], message: Message
) -> None:
    points, messages = table(INFLUX), table(MQTT)
    got_lines = [p.line() for p in points[type(ev)](ev, lambda _: TAGS, lambda _: "CITY")] if lines else []
    assert got_lines == lines
    assert (type(ev) in points) == bool(lines)
    assert [p.line() for p in event_points(ev, lambda _: TAGS, lambda _: "CITY")] == lines
    if message is None:
        assert type(ev) not in messages
        assert event_message(ev, "city") is None
        return
    topic, body, retain = messages[type(ev)](ev, "city")
    assert (topic, orjson.dumps(body).decode(), retain) == message
    assert event_message(ev, "city") == (topic, body, retain)


def test_meter_summaries_can_be_left_out_of_mqtt() -> None:
    meter = next(ev for ev, _, _ in CASES if isinstance(ev, MeterSampled))
    assert event_message(meter, "city", meter_summaries=False) is None
    status = next(ev for ev, _, _ in CASES if isinstance(ev, StatusChanged))
    assert event_message(status, "city", meter_summaries=False) == event_message(status, "city")
