"""Pure conversions of meter values and tokens."""

from __future__ import annotations

import pytest

from csms.core.model import AuthResult, AuthStatus
from csms.ocpp.meter import normalise
from csms.ocpp.v16 import convert as c16
from csms.ocpp.v201 import convert as c201


@pytest.mark.parametrize(("measurand", "value", "unit", "mult", "expected", "si"), [
    (None, 12.5, "kWh", 0, 12_500.0, "Wh"),
    ("Energy.Active.Import.Register", 12_500, None, 0, 12_500.0, "Wh"),
    ("Power.Active.Import", 7.4, "kW", 0, 7_400.0, "W"),
    ("Power.Active.Import", 74, "W", 2, 7_400.0, "W"),
    ("Energy.Active.Import.Register", 125, "Wh", -1, 12.5, "Wh"),
    ("Current.Import", 16, None, 0, 16.0, "A"),
    ("SoC", 80, None, 0, 80.0, "Percent"),
])
def test_sampled_values_are_normalised_to_si_units(
    measurand: str | None, value: float, unit: str | None, mult: int, expected: float, si: str
) -> None:
    v = normalise(measurand, value, unit, multiplier=mult)
    assert v.value == pytest.approx(expected) and v.unit == si


def test_16_meter_values_become_samples_with_derived_quantities() -> None:
    [sample] = c16.to_samples("S", 2, "7", [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [
        {"value": "3.5", "unit": "kWh"},
        {"value": "16", "measurand": "Current.Import", "phase": "L1"},
        {"value": "15", "measurand": "Current.Import", "phase": "L2"},
        {"value": "3680", "measurand": "Power.Active.Import", "phase": "L1", "unit": "W"},
        {"value": "3450", "measurand": "Power.Active.Import", "phase": "L2", "unit": "W"},
        {"value": "abc", "measurand": "Voltage"},  # unreadable: skipped, not fatal
        {"value": "0xSIGNED", "format": "SignedData"},
    ]}])
    assert (sample.evse_id, sample.transaction_id) == (2, "7")
    assert sample.energy_wh == 3500 and sample.current_a == (16.0, 15.0, 0.0)
    assert sample.power_w == 7130.0 and sample.voltage_v is None


def test_201_register_prefers_the_context_asked_for() -> None:
    samples = c201.to_samples("S", 1, 1, "T", [
        {"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [
            {"value": 1.0, "context": "Transaction.Begin", "unitOfMeasure": {"unit": "kWh"}}]},
        {"timestamp": "2026-01-01T00:10:00Z", "sampledValue": [
            {"value": 2500.0, "context": "Sample.Periodic"}]},
    ])
    assert c201.register_wh(samples, "Transaction.Begin") == 1000.0
    assert c201.register_wh(samples, None) == 2500.0


def test_unknown_tokens_are_invalid_in_16_and_unknown_in_201() -> None:
    unknown = AuthResult(AuthStatus.UNKNOWN)
    assert c16.id_tag_info(unknown) == {"status": "Invalid"}
    assert c201.id_token_info(unknown) == {"status": "Unknown"}
