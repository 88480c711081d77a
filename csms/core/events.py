"""Domain events published on the bus. Every event has an ``event_id`` consumers can dedupe on."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from csms.core.feeders import FeederLoad, display_a
from csms.core.model import MeterSample, StationInfo, Transaction
from ocppj.versions import OcppVersion

_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count(1)


def _new_id() -> str:
    """Unique across processes and restarts (random prefix) and cheap (a counter)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):012x}"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of all domain events (``station_id`` is empty for grid-level events)."""

    station_id: str = ""
    event_id: str = field(default_factory=_new_id)
    ts: datetime = field(default_factory=_now)


@dataclass(frozen=True, slots=True, kw_only=True)
class StationConnected(Event):
    protocol: OcppVersion
    remote: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StationDisconnected(Event):
    protocol: OcppVersion
    code: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StationBooted(Event):
    info: StationInfo
    accepted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChanged(Event):
    evse_id: int
    connector_id: int
    status: str
    error_code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionStarted(Event):
    transaction: Transaction


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionEnded(Event):
    transaction: Transaction


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationConsumed(Event):
    """A transaction named the reservation it started on (1.6 StartTransaction, 2.0.1
    TransactionEvent ``reservationId``); repeated when the station repeats the message."""

    reservation_id: int
    tx_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterSampled(Event):
    sample: MeterSample


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityEventReported(Event):
    kind: str
    tech_info: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageExchanged(Event):
    """One OCPP message handled; published for the console's live message log."""

    direction: str  # "in" or "out"
    action: str
    message_type: str  # "Call", "CallResult", "CallError"
    unique_id: str
    payload: object = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FeederLoadChanged(Event):
    """A balancer tick's view of one node; ``station_id`` is empty.

    Amperes on the node's highest phase, unrounded (see :class:`FeederLoad`); outputs
    round them for display with :meth:`rounded`.
    """

    node_id: str
    parent_id: str | None
    limit_a: float | None
    measured_a: float
    allocated_a: float
    headroom_a: float | None
    evses: tuple[tuple[str, int, float], ...] = ()  # (station_id, evse_id, allocated_a)
    meter_stale: bool = False  # the node's meter went silent: it counts as full

    @classmethod
    def of(cls, load: FeederLoad) -> FeederLoadChanged:
        """The event for one node's load."""
        return cls(
            node_id=load.node_id,
            parent_id=load.parent_id,
            limit_a=load.limit_a,
            measured_a=load.measured_a,
            allocated_a=load.allocated_a,
            headroom_a=load.headroom_a,
            evses=tuple((c.station_id, c.evse_id, c.allocated_a) for c in load.chargers),
            meter_stale=load.meter_stale,
        )

    def rounded(self) -> FeederLoadChanged:
        """A copy with the node's currents rounded for display (0.01 A)."""
        return replace(
            self,
            measured_a=display_a(self.measured_a),
            allocated_a=display_a(self.allocated_a),
            headroom_a=display_a(self.headroom_a),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FeederLimitSignal(Event):
    """An external limit for a node (grid operator curtailment, e.g. received over MQTT)."""

    node_id: str
    limit_a: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FeederMeterReading(Event):
    """A measured non-EV base load of a node, per phase L1..L3 in amperes."""

    node_id: str
    current_a: tuple[float, float, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class StationReported(Event):
    """A station->CSMS message kept as a station event (notifications, reports, DataTransfer...).

    ``ts`` is the CSMS's receive time; ``station_time`` the message's own timestamp, if it has one.
    """

    action: str  # the OCPP action name, e.g. "FirmwareStatusNotification"
    data: Mapping[str, object]  # the payload as received (JSON-safe)
    station_time: datetime | None = None
    record_id: int | None = None  # the stored station event's id, once persisted


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockOffsetMeasured(Event):
    """A station's clock offset (station time minus CSMS receive time) moved noticeably."""

    offset_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandFailed(Event):
    """A CSMS-initiated call got no answer (timeout, connection lost) or a CallError."""

    action: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmChanged(Event):
    """An alarm was raised, acknowledged or cleared (``station_id`` is the charger, if any)."""

    alarm_id: int
    kind: str
    severity: str  # "critical" | "major" | "warning"
    state: str  # "raised" | "acknowledged" | "cleared"
    detail: str
    raised_at: datetime
    cleared_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None



@dataclass(frozen=True, slots=True, kw_only=True)
class IdTagsChanged(Event):
    """Operators added, changed or removed id tags, or changed station groups, which decide the tags
    a station's local list holds (``id_tags``: which tags; empty: possibly any)."""

    id_tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalListSynced(Event):
    """A station's local authorization list was checked or updated: ``ok`` when it now holds what
    its policy says (at ``version``), else ``detail`` says why not."""

    ok: bool
    version: int | None = None
    update_type: str | None = None  # "Full" | "Differential" of the last message sent, if any
    detail: str = ""
