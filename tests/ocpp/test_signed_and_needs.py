"""Pure conversions of signed meter values, EV charging needs and kept messages' own times."""

from __future__ import annotations

from datetime import UTC, datetime

from csms.core.ev_needs import EvNeeds
from csms.core.station_events import SignedMeterValue
from csms.ocpp.kept import KEPT_ACTIONS, station_time
from csms.ocpp.v16 import convert as c16
from csms.ocpp.v16 import handlers as h16
from csms.ocpp.v201 import convert as c201
from csms.ocpp.v201 import handlers as h201

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TS = "2026-12-01T11:59:00Z"
T = datetime(2026, 12, 1, 11, 59, tzinfo=UTC)


def test_16_signed_data_is_kept_apart_and_the_numeric_samples_still_parse() -> None:
    mv = [{"timestamp": TS, "sampledValue": [
        {"value": "1200", "context": "Transaction.End"},
        {"value": "<?xml version='1.0'?><signedMeterValue/>", "format": "SignedData",
         "context": "Transaction.End", "measurand": "Energy.Active.Import.Register"},
    ]}]
    [sample] = c16.to_samples("S", 1, "7", mv)
    assert sample.energy_wh == 1200.0 and len(sample.values) == 1
    assert c16.signed_values("S", "7", AT, mv) == [SignedMeterValue(
        "S", "7", AT, T, "Transaction.End", "Energy.Active.Import.Register", "SignedData", None, None,
        "<?xml version='1.0'?><signedMeterValue/>",
    )]


def test_16_a_message_with_only_signed_data_gives_no_sample_and_no_error() -> None:
    mv = [{"timestamp": TS, "sampledValue": [{"value": "AAEC", "format": "SignedData"}]}]
    assert c16.to_samples("S", 1, "7", mv) == []
    assert [v.data for v in c16.signed_values("S", "7", AT, mv)] == ["AAEC"]
    assert c16.signed_values("S", "7", AT, [{"timestamp": TS, "sampledValue": [{"value": "5"}]}]) == []


def test_201_signed_meter_value_keeps_its_method_encoding_and_key_beside_the_reading() -> None:
    mv = [{"timestamp": TS, "sampledValue": [{
        "value": 1.5, "context": "Sample.Periodic", "unitOfMeasure": {"unit": "kWh"},
        "signedMeterValue": {"signedMeterData": "c2lnbmVk", "signingMethod": "ECDSA-secp256r1-SHA256",
                             "encodingMethod": "OCMF", "publicKey": "cHVi"},
    }, {"value": 16, "measurand": "Current.Import"}]}]
    [reading] = c201.to_readings(mv)
    assert [v.value for v in reading.values] == [1500.0, 16.0]
    assert c201.signed_values("S", "tx-1", AT, mv) == [SignedMeterValue(
        "S", "tx-1", AT, T, "Sample.Periodic", None, "OCMF", "ECDSA-secp256r1-SHA256", "cHVi", "c2lnbmVk",
    )]


def test_ev_needs_read_ac_or_dc_parameters() -> None:
    ac = {"requestedEnergyTransfer": "AC_three_phase", "departureTime": TS,
          "acChargingParameters": {"energyAmount": 20000, "evMinCurrent": 6, "evMaxCurrent": 10,
                                   "evMaxVoltage": 400}}
    assert c201.ev_needs("S", 1, ac) == EvNeeds("S", 1, T, 20000.0, 10.0)
    dc = {"requestedEnergyTransfer": "DC", "dcChargingParameters": {"evMaxCurrent": 125, "evMaxVoltage": 800}}
    assert c201.ev_needs("S", 2, dc) == EvNeeds("S", 2, None, None, 125.0)
    assert c201.ev_needs("S", 3, {"requestedEnergyTransfer": "DC"}) == EvNeeds("S", 3, None, None, None)


def test_a_kept_message_time_is_its_timestamp_or_generated_at_when_readable() -> None:
    assert station_time({"timestamp": TS}) == T
    assert station_time({"generatedAt": TS, "seqNo": 0}) == T
    assert station_time({"timestamp": "2026-12-31T23:59:60Z"}) is None  # a leap second: kept, no time
    assert station_time({"status": "Installed"}) is None


def test_every_notification_and_report_is_kept_in_each_version_that_has_it() -> None:
    listed = {
        "FirmwareStatusNotification", "DiagnosticsStatusNotification", "LogStatusNotification",
        "PublishFirmwareStatusNotification", "NotifyEvent", "NotifyMonitoringReport", "NotifyChargingLimit",
        "ClearedChargingLimit", "ReportChargingProfiles", "NotifyEVChargingNeeds", "NotifyEVChargingSchedule",
        "NotifyDisplayMessages", "NotifyCustomerInformation", "ReservationStatusUpdate", "DataTransfer",
        "StatusNotification", "SecurityEventNotification", "BootNotification",
    }
    assert listed <= KEPT_ACTIONS
    for handlers in (h16.HANDLERS, h201.HANDLERS):
        for action, handler in handlers.items():
            wrapped = handler.__qualname__ == "kept.<locals>.keep"
            assert wrapped == (action in KEPT_ACTIONS), action
    assert set(h16.HANDLERS) | set(h201.HANDLERS) >= KEPT_ACTIONS
