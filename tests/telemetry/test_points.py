"""Pure conversions: events -> line protocol and MQTT messages; health deltas; spool; back-off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csms.core.events import (
    FeederLimitSignal,
    FeederLoadChanged,
    FeederMeterReading,
    MeterSampled,
    StationConnected,
    StatusChanged,
    TransactionEnded,
)
from csms.core.model import MeterSample, SampledValue, Transaction
from csms.errors import ConfigError
from csms.telemetry.health import IntervalStats, quantile
from csms.telemetry.influx import Backoff, Outcome, classify
from csms.telemetry.mqtt import UNKNOWN_AGE, broker_address, event_message, parse_feeder_message, topic_part
from csms.telemetry.points import (
    StationTags,
    event_points,
    field_name,
    make_point,
    meter_point,
    to_ns,
)
from csms.telemetry.spool import Spool
from ocppj.versions import OcppVersion

TS = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
TAGS = StationTags("ACME", "AC 22", "ocpp1.6")


def sv(
    measurand: str, value: float, unit: str, phase: str | None = None, location: str | None = None
) -> SampledValue:
    return SampledValue(measurand, value, unit, phase, "Sample.Periodic", location)


def test_timestamps_are_exact_nanoseconds_and_naive_times_count_as_utc() -> None:
    assert to_ns(TS) == 1_772_366_400_123_456_000
    assert to_ns(TS.replace(tzinfo=None)) == to_ns(TS)
    assert to_ns(TS.astimezone(UTC).replace(tzinfo=None) + timedelta(microseconds=1)) == to_ns(TS) + 1000


@pytest.mark.parametrize(("value", "name"), [
    (sv("Power.Active.Import", 1, "W"), "power_w"),
    (sv("Current.Import", 1, "A", "L2"), "current_l2_a"),
    (sv("Voltage", 1, "V", "L1-N"), "voltage_l1_v"),
    (sv("Voltage", 1, "V", "L1-L2"), "voltage_l1_l2_v"),
    (sv("SoC", 1, "Percent", location="EV"), "soc_pct"),
    (sv("Temperature", 1, "Celsius", location="Body"), "temperature_body_c"),
    (sv("Power.Factor", 1, ""), "power_factor"),
    (sv("RPM", 1, "RPM"), "rpm_rpm"),
    (sv("Energy.Active.Import.Register", 1, "Wh", location="Inlet"), "energy_inlet_wh"),
])
def test_field_names_carry_measurand_location_phase_and_unit(value: SampledValue, name: str) -> None:
    assert field_name(value) == name


def test_meter_point_is_at_receive_time_with_station_time_as_a_field() -> None:
    sample = MeterSample("CP 1", 2, 1, TS, (
        sv("Energy.Active.Import.Register", 1500, "Wh"),
        sv("Power.Active.Import", 3000, "W", "L1"), sv("Power.Active.Import", 2000, "W", "L2"),
        sv("Current.Import", 13, "A", "L1"),
    ), "42")
    received = TS - timedelta(hours=2)  # the station's clock runs two hours ahead
    point = meter_point(sample, TAGS, received)
    assert point is not None
    assert point.line() == (
        "meter,connector=1,context=Sample.Periodic,evse=2,model=AC\\ 22,protocol=ocpp1.6,station=CP\\ 1,"
        "vendor=ACME energy_wh=1500.0,power_l1_w=3000.0,power_l2_w=2000.0,current_l1_a=13.0,power_w=5000.0,"
        f'tx_id="42",station_time={to_ns(TS) // 1_000_000}i {to_ns(received)}'
    )


def test_samples_of_one_message_get_distinct_times_and_an_event_always_the_same_point() -> None:
    received = TS
    samples = [MeterSample("CP1", 1, 1, TS + timedelta(minutes=i), (sv("Current.Import", i, "A", "L1"),), "7")
               for i in range(50)]
    events = [MeterSampled(station_id="CP1", sample=s, ts=received) for s in samples]
    times = [p.line().rsplit(" ", 1)[1] for ev in events for p in event_points(ev, lambda _: TAGS)]
    assert len(set(times)) == len(events)  # none overwrites another in InfluxDB
    assert all(to_ns(received) <= int(t) < to_ns(received) + 1000 for t in times)
    again = [p.line() for p in event_points(events[0], lambda _: TAGS)]
    assert again == [p.line() for p in event_points(events[0], lambda _: TAGS)]


def test_line_protocol_escapes_keys_tags_and_strings_and_drops_empty_and_non_finite() -> None:
    p = make_point("m x", {"t,a g": "v=1 2", "empty": "", "none": None},
                   [("f", 'say "hi"\\\n'), ("n", float("nan")), ("b", True), ("i", 3)], 7)
    assert p is not None
    assert p.line() == 'm\\ x,t\\,a\\ g=v\\=1\\ 2 f="say \\"hi\\"\\\\\\n",b=true,i=3i 7'
    assert make_point("m", {}, [("x", None)], 1) is None


def test_events_become_points_at_their_receive_time() -> None:
    tx = Transaction("CP1", "7", 1, 1, "TAG", TS, TS + timedelta(minutes=30), 1000.0, 8500.0, "Local")
    events = [
        StatusChanged(station_id="CP1", evse_id=1, connector_id=1, status="Faulted",
                      error_code="GroundFailure", ts=TS),
        StationConnected(station_id="CP1", protocol=OcppVersion.V201, ts=TS),
        TransactionEnded(station_id="CP1", transaction=tx, ts=TS + timedelta(hours=1)),
    ]
    lines = [p.line() for ev in events for p in event_points(ev, lambda _: TAGS)]
    head = "status,connector=1,evse=1,model=AC\\ 22,protocol=ocpp1.6,station=CP1,vendor=ACME "
    assert lines[0].startswith(head)
    assert 'status="Faulted",code=8i,error_code="GroundFailure"' in lines[0]
    assert ",protocol=ocpp2.0.1," in lines[1] and "connected=1i" in lines[1]
    assert ",event=ended," in lines[2] and "energy_wh=7500.0,duration_s=1800.0" in lines[2]
    assert lines[2].endswith(str(to_ns(TS + timedelta(hours=1))))  # received, not the station's stop time
    assert f"station_time={to_ns(TS + timedelta(minutes=30)) // 1_000_000}i" in lines[2]
    empty = MeterSampled(station_id="X", sample=MeterSample("X", 1, 1, TS, ()))
    assert event_points(empty, lambda _: TAGS) == []


def test_feeder_events_become_feeder_allocation_meter_and_limit_points() -> None:
    load = FeederLoadChanged(node_id="F1", parent_id="SUB", limit_a=200, measured_a=50.0, allocated_a=100.0,
                             headroom_a=100.0, evses=(("CP1", 1, 16.0),), ts=TS)
    lines = [p.line() for p in event_points(load, lambda _: TAGS, lambda node: "CITY")]
    assert lines[0] == (f"feeder,feeder=F1,parent=SUB,site=CITY limit_a=200.0,load_a=50.0,allocated_a=100.0,"
                        f"headroom_a=100.0,utilisation=0.5,evses=1i {to_ns(TS)}")
    assert lines[1].startswith("allocation,evse=1,feeder=F1,model=AC\\ 22,") and "limit_a=16.0" in lines[1]
    meter = FeederMeterReading(node_id="F1", current_a=(1.0, 2.0, 3.0), ts=TS)
    assert event_points(meter, lambda _: TAGS)[0].line() == (
        "feeder_meter,feeder=F1 current_l1_a=1.0,current_l2_a=2.0,current_l3_a=3.0,current_a=3.0 "
        f"{to_ns(TS)}")
    cleared = FeederLimitSignal(node_id="F1", limit_a=None, ts=TS)
    cleared_line = event_points(cleared, lambda _: TAGS)[0].line()
    assert cleared_line == f"feeder_limit,feeder=F1 cleared=true {to_ns(TS)}"


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.001, 50.0), (0.01, 90.0), (0.1, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.001)
    assert quantile(0.95, buckets) == pytest.approx(0.01 + 0.09 * 0.5)
    assert quantile(0.95, [(float("inf"), 0.0)]) is None


def test_interval_stats_report_deltas_per_interval() -> None:
    stats = IntervalStats()
    labels = {"direction": "in", "protocol": "ocpp1.6", "action": "Heartbeat", "result": "ok"}
    assert stats.actions([("csms_messages_total", labels, 10.0)], 2.0)[0].rate_per_s == 5.0
    assert stats.actions([("csms_messages_total", labels, 10.0)], 2.0) == ()
    hist = [("csms_handler_seconds_count", {"action": "A"}, 4.0),
            ("csms_handler_seconds_sum", {"action": "A"}, 0.02),
            ("csms_handler_seconds_bucket", {"action": "A", "le": "0.01"}, 4.0),
            ("csms_handler_seconds_bucket", {"action": "A", "le": "+Inf"}, 4.0)]
    (lat,) = stats.latencies(hist)
    assert (lat.action, lat.count, lat.mean_ms) == ("A", 4, pytest.approx(5.0))
    assert stats.latencies(hist) == ()


def test_mqtt_topics_are_safe_and_payloads_carry_the_event_id() -> None:
    ev = StatusChanged(station_id="CP#1/+", evse_id=2, connector_id=1, status="Available")
    msg = event_message(ev, "city")
    assert msg is not None
    topic, body, retain = msg
    assert topic == "city/stations/CP_1__/evse/2/connector/1/status" and retain
    assert body["event_id"] == ev.event_id and body["station"] == "CP#1/+"
    assert topic_part("") == "_"
    load = FeederLoadChanged(node_id="F1", parent_id=None, limit_a=None, measured_a=1.0, allocated_a=2.0,
                             headroom_a=None, evses=(("CP1", 1, 16.0),))
    assert event_message(load, "p") is not None
    assert event_message(load, "p")[0] == "p/feeders/F1/load"  # type: ignore[index]
    assert event_message(FeederMeterReading(node_id="F", current_a=(1.0, 1.0, 1.0)), "p") is None


@pytest.mark.parametrize(("topic", "payload", "error"), [
    ("p/feeders/F1/meter", b"[]", "JSON object"),
    ("p/feeders/F1/meter", b"{}", "current_a"),
    ("p/feeders/F1/meter", b'{"current_a": [1, 2, 3, 4]}', "1 to 3"),
    ("p/feeders/F1/limit", b'{"limit_a": -5}', "negative"),
    ("p/feeders/F1/limit", b'{"other": 1}', "limit_a"),
    ("p/feeders/F1/limit", b'{"limit_a": true}', "number"),
])
def test_malformed_feeder_messages_are_refused(topic: str, payload: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_feeder_message("p", topic, payload)


def test_feeder_message_parsing_accepts_one_number_and_ignores_other_topics() -> None:
    payload = b'{"current_a": 12, "ts": "2026-03-01T12:00:00Z"}'
    ev = parse_feeder_message("a/b", "a/b/feeders/F9/meter", payload)
    assert isinstance(ev, FeederMeterReading) and ev.current_a == (12.0, 12.0, 12.0) and ev.ts == TS.replace(
        microsecond=0)
    assert parse_feeder_message("a/b", "a/b/stations/X/meter", b"{}") is None
    retained = parse_feeder_message("a/b", "a/b/feeders/F9/meter", b'{"current_a": 12}', retained=True)
    assert retained is not None and retained.ts == UNKNOWN_AGE  # kept by the broker for who knows how long
    fresh = parse_feeder_message("a/b", "a/b/feeders/F9/meter", b'{"current_a": 12}')
    assert fresh is not None and fresh.ts > UNKNOWN_AGE
    limit = parse_feeder_message("a/b", "a/b/feeders/F9/limit", b'{"limit_a": 40}', retained=True)
    assert limit is not None and limit.ts > UNKNOWN_AGE  # a retained limit still holds
    stamped = parse_feeder_message("a/b", "a/b/feeders/F9/meter", payload, retained=True)
    assert stamped is not None and stamped.ts == TS.replace(microsecond=0)
    assert broker_address("mqtt://broker:1884") == ("broker", 1884, False)
    assert broker_address("broker") == ("broker", 1883, False)
    assert broker_address("mqtts://broker") == ("broker", 8883, True)
    with pytest.raises(ConfigError, match="mqtts://"):
        broker_address("ws://broker")


def test_spool_is_fifo_bounded_crash_tolerant_and_exclusive(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=200, segment_bytes=30)
    assert spool.append(["a" * 30]) and spool.append(["b" * 30]) and spool.append(["c" * 30])
    assert not spool.append(["d" * 150])  # would exceed max_bytes: refused, nothing written
    assert spool.lines == 3
    with pytest.raises(ConfigError, match="another process"):
        Spool(tmp_path, max_bytes=200, segment_bytes=30)
    head = spool.head()
    assert head is not None and spool.read(head) == ["a" * 30]
    spool.remove(head)
    spool.close()
    with (tmp_path / "000000000003.seg").open("ab") as f:
        f.write(b"torn-line-without-newline")
    reopened = Spool(tmp_path, max_bytes=200, segment_bytes=30)
    got = []
    while (seg := reopened.head()) is not None:
        got += reopened.read(seg)
        reopened.remove(seg)
    assert got == ["b" * 30, "c" * 30] and reopened.empty()
    reopened.close()


def test_http_status_classification_and_backoff() -> None:
    assert [classify(s) for s in (204, 400, 422)] == [Outcome.OK, Outcome.REJECTED, Outcome.REJECTED]
    assert {classify(s) for s in (401, 403, 404, 408, 413, 429, 500, 503)} == {Outcome.RETRY}
    b = Backoff(1.0, 5.0, rand=lambda: 0.5)
    assert [b.delay() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    b.reset()
    assert b.delay() == 1.0
