"""Domain model: stations, connectors, id tokens, transactions and meter samples.

Frozen slotted dataclasses with units in the field names. Nothing here knows
which OCPP version a value came from. ``OcppVersion`` (a station's negotiated protocol)
comes from ``ocppj.versions``, a standard-library-only leaf, so the core still depends
on nothing but the standard library.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from ocppj.versions import OcppVersion


class AuthStatus(enum.StrEnum):
    """Outcome of an id-token check, in domain terms (adapters map to each version)."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    UNKNOWN = "Unknown"
    CONCURRENT_TX = "ConcurrentTx"


class Measurand(enum.StrEnum):
    """The measurands the CSMS understands; others are kept under their OCPP name."""

    ENERGY_IMPORT_REGISTER = "Energy.Active.Import.Register"
    POWER_IMPORT = "Power.Active.Import"
    CURRENT_IMPORT = "Current.Import"
    CURRENT_OFFERED = "Current.Offered"
    VOLTAGE = "Voltage"
    SOC = "SoC"


@dataclass(frozen=True, slots=True)
class StationInfo:
    """What a station says about itself in BootNotification."""

    vendor: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None


class SampledValue(NamedTuple):
    """One normalised reading: value in the SI unit named by ``unit`` (W, Wh, A, V, Percent...).

    A NamedTuple, not a frozen dataclass: eight are built per MeterValues message, and a
    NamedTuple builds about 4x faster on Python 3.11.
    """

    measurand: str
    value: float
    unit: str
    phase: str | None = None
    context: str | None = None
    location: str | None = None


class MeterReading(NamedTuple):
    """The readings a station took at one instant, not yet placed on an EVSE."""

    ts: datetime
    values: tuple[SampledValue, ...]


@dataclass(frozen=True, slots=True)
class MeterSample:
    """All readings a station took at one instant on one EVSE/connector."""

    station_id: str
    evse_id: int
    connector_id: int
    ts: datetime
    values: tuple[SampledValue, ...]
    transaction_id: str | None = None

    def first(self, measurand: str, *, phase: str | None = None) -> float | None:
        """The value of ``measurand`` at the outlet (total when ``phase`` is None)."""
        for v in self.values:
            if v.measurand == measurand and v.phase == phase and v.location in (None, "Outlet"):
                return v.value
        return None

    @property
    def energy_wh(self) -> float | None:
        """The energy import register, in Wh."""
        return self.first(Measurand.ENERGY_IMPORT_REGISTER)

    @property
    def power_w(self) -> float | None:
        """Active power import, in W (sum of phases when only per-phase values were sent)."""
        total = self.first(Measurand.POWER_IMPORT)
        if total is not None:
            return total
        phases = [
            v.value
            for v in self.values
            if v.measurand == Measurand.POWER_IMPORT and v.phase in ("L1", "L2", "L3", "L1-N", "L2-N", "L3-N")
        ]
        return sum(phases) if phases else None

    @property
    def current_a(self) -> tuple[float, float, float] | None:
        """Import current per phase L1, L2, L3 in A (a phase-less value counts for L1)."""
        per = [0.0, 0.0, 0.0]
        seen = False
        for v in self.values:
            if v.measurand != Measurand.CURRENT_IMPORT:
                continue
            seen = True
            idx = _PHASE_INDEX.get(v.phase or "L1")
            if idx is not None:
                per[idx] = v.value
        return (per[0], per[1], per[2]) if seen else None

    @property
    def soc_percent(self) -> float | None:
        """State of charge reported by the EV, in percent (any location: usually ``EV``)."""
        for v in self.values:
            if v.measurand == Measurand.SOC:
                return v.value
        return None

    @property
    def voltage_v(self) -> float | None:
        """Voltage (total, or L1 when only per-phase values were sent)."""
        v = self.first(Measurand.VOLTAGE)
        if v is not None:
            return v
        for s in self.values:
            if s.measurand == Measurand.VOLTAGE:
                return s.value
        return None


_PHASE_INDEX = {"L1": 0, "L2": 1, "L3": 2, "L1-N": 0, "L2-N": 1, "L3-N": 2}


@dataclass(frozen=True, slots=True)
class IdTag:
    """An authorisation token the operator manages."""

    id_tag: str
    status: AuthStatus = AuthStatus.ACCEPTED
    expiry: datetime | None = None
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class AuthResult:
    """What the CSMS tells a station about a token."""

    status: AuthStatus
    expiry: datetime | None = None
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectorState:
    """Last known status of one connector (1.6) or EVSE connector (2.0.1)."""

    evse_id: int
    connector_id: int
    status: str
    error_code: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Transaction:
    """A charging session. ``tx_id`` is the id the station knows (int-like for 1.6)."""

    station_id: str
    tx_id: str
    evse_id: int
    connector_id: int
    id_tag: str | None
    started_at: datetime | None
    stopped_at: datetime | None = None
    meter_start_wh: float | None = None
    meter_stop_wh: float | None = None
    stop_reason: str | None = None
    protocol: OcppVersion = OcppVersion.V16
    last_seq_no: int | None = None
    flags: tuple[str, ...] = field(default_factory=tuple)
    reservation_id: int | None = None  # the reservation it consumed (read back from the store)

    @property
    def active(self) -> bool:
        """True until the station reported the end of the session."""
        return self.stopped_at is None

    @property
    def energy_wh(self) -> float | None:
        """Energy delivered: difference of the meter register, None when not known yet."""
        if self.meter_start_wh is None or self.meter_stop_wh is None:
            return None
        return self.meter_stop_wh - self.meter_start_wh


@dataclass(frozen=True, slots=True)
class Station:
    """A registered charging station and what the CSMS knows of it."""

    station_id: str
    protocol: OcppVersion | None = None
    info: StationInfo | None = None
    security_profile: int = 0
    registered_at: datetime | None = None
    last_boot_at: datetime | None = None
    last_seen_at: datetime | None = None
