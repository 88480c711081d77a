"""Normalise OCPP sampled values to SI units (shared by both versions' converters)."""

from __future__ import annotations

from csms.core.model import SampledValue

# unit -> (SI unit, factor)
_UNITS: dict[str, tuple[str, float]] = {
    "Wh": ("Wh", 1.0), "kWh": ("Wh", 1000.0),
    "varh": ("varh", 1.0), "kvarh": ("varh", 1000.0),
    "W": ("W", 1.0), "kW": ("W", 1000.0),
    "VA": ("VA", 1.0), "kVA": ("VA", 1000.0),
    "var": ("var", 1.0), "kvar": ("var", 1000.0),
    "A": ("A", 1.0), "V": ("V", 1.0), "K": ("K", 1.0),
    "Celsius": ("Celsius", 1.0), "Fahrenheit": ("Fahrenheit", 1.0), "Percent": ("Percent", 1.0),
    "Hz": ("Hz", 1.0), "ASU": ("ASU", 1.0), "B": ("B", 1.0), "dB": ("dB", 1.0),
    "dBm": ("dBm", 1.0), "deg": ("deg", 1.0), "lx": ("lx", 1.0), "m": ("m", 1.0),
    "ms2": ("ms2", 1.0), "N": ("N", 1.0), "Ohm": ("Ohm", 1.0), "kPa": ("kPa", 1.0),
    "RH": ("RH", 1.0), "RPM": ("RPM", 1.0), "s": ("s", 1.0),
}

DEFAULT_MEASURAND = "Energy.Active.Import.Register"
_DEFAULT_UNIT_BY_PREFIX = (
    ("Energy.Reactive", "varh"), ("Energy", "Wh"), ("Power.Reactive", "var"),
    ("Power.Factor", ""), ("Power", "W"), ("Current", "A"), ("Voltage", "V"),
    ("SoC", "Percent"), ("Frequency", "Hz"), ("Temperature", "Celsius"), ("RPM", "RPM"),
)


_default_units: dict[str, str] = {}


def default_unit(measurand: str) -> str:
    """The unit a measurand has when the station omits it."""
    unit = _default_units.get(measurand)
    if unit is None:
        unit = next((u for prefix, u in _DEFAULT_UNIT_BY_PREFIX if measurand.startswith(prefix)), "Wh")
        if len(_default_units) < 1000:  # measurand names come from stations: keep the cache bounded
            _default_units[measurand] = unit
    return unit


def normalise(
    measurand: str | None, value: float, unit: str | None, *, multiplier: int = 0,
    phase: str | None = None, context: str | None = None, location: str | None = None,
) -> SampledValue:
    """One reading in SI units: 12.5 kWh becomes 12500 Wh; multipliers are powers of ten."""
    m = measurand or DEFAULT_MEASURAND
    u = unit or default_unit(m)
    si = _UNITS.get(u)
    if si is not None:
        u, factor = si
        if factor != 1.0:
            value *= factor
    if multiplier:
        value *= 10.0 ** max(-30, min(30, multiplier))  # the schema bounds nothing; keep it finite
    return SampledValue(m, value, u, phase, context, location)
