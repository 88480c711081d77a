"""The table-driven meter conversion gives exactly what the straightforward one gave."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csms.core.model import Measurand, SampledValue
from csms.ocpp import meter
from csms.ocpp.v16 import convert as c16
from csms.ocpp.v201 import convert as c201

# --- reference: the conversion as it was written before the lookup table --------------------


def _ref_default_unit(measurand: str) -> str:
    return next((u for prefix, u in meter._DEFAULT_UNIT_BY_PREFIX if measurand.startswith(prefix)), "Wh")


def _ref_normalise(
    measurand: str | None, value: float, unit: str | None, *, multiplier: int = 0,
    phase: str | None = None, context: str | None = None, location: str | None = None,
) -> SampledValue:
    m = measurand or meter.DEFAULT_MEASURAND
    u = unit or _ref_default_unit(m)
    si = meter._UNITS.get(u)
    if si is not None:
        u, factor = si
        if factor != 1.0:
            value *= factor
    if multiplier:
        value *= 10.0 ** max(-30, min(30, multiplier))
    return SampledValue(m, value, u, phase, context, location)


def _ref_16(raw: list[dict[str, Any]]) -> tuple[SampledValue, ...]:
    out = []
    for sv in raw:
        if sv.get("format") == "SignedData":
            continue
        try:
            value = float(sv["value"])
        except (TypeError, ValueError):
            continue
        out.append(_ref_normalise(sv.get("measurand"), value, sv.get("unit"), phase=sv.get("phase"),
                                  context=sv.get("context"), location=sv.get("location")))
    return tuple(out)


def _ref_201(raw: list[dict[str, Any]]) -> tuple[SampledValue, ...]:
    out = []
    for sv in raw:
        uom = sv.get("unitOfMeasure") or {}
        out.append(_ref_normalise(
            sv.get("measurand"), float(sv["value"]), uom.get("unit"),
            multiplier=int(uom.get("multiplier", 0)), phase=sv.get("phase"),
            context=sv.get("context"), location=sv.get("location"),
        ))
    return tuple(out)


def _same(got: tuple[SampledValue, ...], want: tuple[SampledValue, ...]) -> None:
    """Equal field by field, floats bit for bit (repr tells -0.0 and nan apart)."""
    assert [type(v) for v in got] == [SampledValue] * len(want)
    assert [(*v[:1], repr(v.value), type(v.value), *v[2:]) for v in got] == [
        (*v[:1], repr(v.value), type(v.value), *v[2:]) for v in want]


# --- strategies ------------------------------------------------------------------------------

MEASURANDS = st.none() | st.just("") | st.sampled_from([m.value for m in Measurand]) | st.sampled_from(
    ["Energy.Reactive.Import.Register", "Power.Factor", "Power.Reactive.Export", "Frequency", "Temperature",
     "RPM", "SoC", "Voltage", "Current.Offered", "Energy.Active.Export.Interval", "Bogus", "energy"])
UNITS = st.none() | st.just("") | st.sampled_from(sorted(meter._UNITS)) | st.sampled_from(["kwh", "mWh", "?"])
LABELS = st.none() | st.sampled_from(["L1", "L2-N", "Sample.Periodic", "Outlet", "EV", ""])
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**12), 10**12)
VALUES_16 = FLOATS.map(repr) | st.sampled_from(["abc", "", " 12 ", "1e400", "nan", "-0", "0x10"]) | st.none()


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts where each field is present or absent."""
    return st.fixed_dictionaries({}, optional=fields)


SV_16 = st.builds(lambda base, value: {**base, "value": value}, _optional(
    measurand=MEASURANDS, unit=UNITS, phase=LABELS, context=LABELS, location=LABELS,
    format=st.sampled_from(["Raw", "SignedData"])), VALUES_16)
UOM = _optional(unit=UNITS, multiplier=st.integers(-40, 40) | st.sampled_from([3.0, -2.0]))
SV_201 = st.builds(lambda base, value: {**base, "value": value}, _optional(
    measurand=MEASURANDS, phase=LABELS, context=LABELS, location=LABELS, unitOfMeasure=UOM | st.just({})),
    FLOATS)


@given(st.lists(SV_16, max_size=10))
def test_16_sampled_values_match_the_reference(raw: list[dict[str, Any]]) -> None:
    _same(c16.sampled_values(raw), _ref_16(raw))


@given(st.lists(SV_201, max_size=10))
def test_201_sampled_values_match_the_reference(raw: list[dict[str, Any]]) -> None:
    _same(c201.sampled_values(raw), _ref_201(raw))


@given(MEASURANDS, FLOATS, UNITS, st.integers(-40, 40), LABELS)
def test_normalise_matches_the_reference(
    measurand: str | None, value: float, unit: str | None, multiplier: int, phase: str | None
) -> None:
    got = meter.normalise(measurand, value, unit, multiplier=multiplier, phase=phase)
    _same((got,), (_ref_normalise(measurand, value, unit, multiplier=multiplier, phase=phase),))


def test_the_lookup_cache_is_bounded_and_still_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(meter, "RESOLVED", {})
    monkeypatch.setattr(meter, "MAX_CACHED", 3)
    raw = [{"value": 2, "unitOfMeasure": {"unit": f"u{i}"}} for i in range(10)]
    raw.append({"value": 2, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW"}})
    monkeypatch.setattr(c201, "RESOLVED", meter.RESOLVED)
    _same(c201.sampled_values(raw), _ref_201(raw))
    assert len(meter.RESOLVED) == 3
