"""Normalise OCPP sampled values to SI units (shared by both versions' converters).

The converters look each reading's (measurand, unit) pair, as sent, up in ``RESOLVED``: one
dict lookup to (measurand, SI unit, factor), filled by ``resolve``. ``new_tuple(SampledValue,
(...))`` builds a reading ~2.5x faster than the NamedTuple constructor.
"""

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
MAX_CACHED = 4096  # measurands and units come from stations (2.0.1 units are free text): bound the cache

Resolved = tuple[str, str, float]
RESOLVED: dict[tuple[str | None, str | None], Resolved] = {}  # (measurand, unit) as sent -> resolved
new_tuple = tuple.__new__  # new_tuple(SampledValue, (...)): the NamedTuple without its constructor


def default_unit(measurand: str) -> str:
    """The unit a measurand has when the station omits it."""
    return next((u for prefix, u in _DEFAULT_UNIT_BY_PREFIX if measurand.startswith(prefix)), "Wh")


def _resolve(measurand: str | None, unit: str | None) -> Resolved:
    m = measurand or DEFAULT_MEASURAND
    u = unit or default_unit(m)
    si, factor = _UNITS.get(u, (u, 1.0))
    return m, si, factor


def resolve(measurand: str | None, unit: str | None) -> Resolved:
    """(measurand, SI unit, factor to that unit) for a reading sent with ``measurand`` and ``unit``."""
    key = (measurand, unit)
    hit = RESOLVED.get(key)
    if hit is None:
        hit = _resolve(measurand, unit)
        if len(RESOLVED) < MAX_CACHED:
            RESOLVED[key] = hit
    return hit


_SCALES = {m: 10.0**m for m in range(-30, 31)}


def scale(multiplier: int) -> float:
    """The factor of a power-of-ten ``multiplier`` (clamped to +-30: the value must stay finite)."""
    return _SCALES[max(-30, min(30, multiplier))]


def normalise(
    measurand: str | None, value: float, unit: str | None, *, multiplier: int = 0,
    phase: str | None = None, context: str | None = None, location: str | None = None,
) -> SampledValue:
    """One reading in SI units: 12.5 kWh becomes 12500 Wh; multipliers are powers of ten."""
    m, u, factor = resolve(measurand, unit)
    if factor != 1.0:
        value *= factor
    if multiplier:
        value *= scale(multiplier)
    return new_tuple(SampledValue, (m, value, u, phase, context, location))
