"""What each domain event becomes in every output: InfluxDB points, MQTT messages, console updates.

``EVENTS`` lists every concrete event class once, with the console's reaction to it. Each output
describes itself with one ``PerEvent`` record: a builder for every event kind, ``None`` where the
output ignores that kind. The record's fields have no defaults, so a new event kind makes mypy point
at every output that has not decided about it yet. ``table`` turns a record into the dict the output
dispatches on, by ``type(event)``.

Dependencies point inward: this module imports only ``csms.core``; the InfluxDB points, the MQTT
bridge and the console import it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Concatenate, Generic, ParamSpec, TypeVar

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

P = ParamSpec("P")
T = TypeVar("T")


class ConsoleUpdate(Enum):
    """What the operator console refreshes when an event arrives."""

    NONE = "none"
    STATION = "station"  # the station's row (and its detail page when watched)
    SESSIONS = "sessions"  # the station's row and the count of open sessions
    FEEDER = "feeder"  # one node of the feeder tree


EVENTS: Mapping[type[Event], ConsoleUpdate] = {
    StationConnected: ConsoleUpdate.STATION,
    StationDisconnected: ConsoleUpdate.STATION,
    StationBooted: ConsoleUpdate.STATION,
    StatusChanged: ConsoleUpdate.STATION,
    TransactionStarted: ConsoleUpdate.SESSIONS,
    TransactionEnded: ConsoleUpdate.SESSIONS,
    MeterSampled: ConsoleUpdate.STATION,
    SecurityEventReported: ConsoleUpdate.NONE,
    MessageExchanged: ConsoleUpdate.NONE,  # the console taps frames directly
    FeederLoadChanged: ConsoleUpdate.FEEDER,
    FeederLimitSignal: ConsoleUpdate.NONE,
    FeederMeterReading: ConsoleUpdate.NONE,
    StationReported: ConsoleUpdate.NONE,
    ClockOffsetMeasured: ConsoleUpdate.STATION,
    CommandFailed: ConsoleUpdate.NONE,
    AlarmChanged: ConsoleUpdate.NONE,
    IdTagsChanged: ConsoleUpdate.NONE,
    LocalListSynced: ConsoleUpdate.NONE,
    ReservationConsumed: ConsoleUpdate.NONE,
}
"""Every concrete domain event with the console's update; the keys name ``PerEvent``'s fields."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PerEvent(Generic[P, T]):
    """One output's builder per event kind (``None``: the output ignores the kind).

    A builder takes the event and the output's arguments ``P`` and makes a ``T``.
    """

    station_connected: Callable[Concatenate[StationConnected, P], T] | None
    station_disconnected: Callable[Concatenate[StationDisconnected, P], T] | None
    station_booted: Callable[Concatenate[StationBooted, P], T] | None
    status_changed: Callable[Concatenate[StatusChanged, P], T] | None
    transaction_started: Callable[Concatenate[TransactionStarted, P], T] | None
    transaction_ended: Callable[Concatenate[TransactionEnded, P], T] | None
    meter_sampled: Callable[Concatenate[MeterSampled, P], T] | None
    security_event_reported: Callable[Concatenate[SecurityEventReported, P], T] | None
    message_exchanged: Callable[Concatenate[MessageExchanged, P], T] | None
    feeder_load_changed: Callable[Concatenate[FeederLoadChanged, P], T] | None
    feeder_limit_signal: Callable[Concatenate[FeederLimitSignal, P], T] | None
    feeder_meter_reading: Callable[Concatenate[FeederMeterReading, P], T] | None
    station_reported: Callable[Concatenate[StationReported, P], T] | None
    clock_offset_measured: Callable[Concatenate[ClockOffsetMeasured, P], T] | None
    command_failed: Callable[Concatenate[CommandFailed, P], T] | None
    alarm_changed: Callable[Concatenate[AlarmChanged, P], T] | None
    id_tags_changed: Callable[Concatenate[IdTagsChanged, P], T] | None
    local_list_synced: Callable[Concatenate[LocalListSynced, P], T] | None
    reservation_consumed: Callable[Concatenate[ReservationConsumed, P], T] | None


def builder_name(cls: type[Event]) -> str:
    """The ``PerEvent`` field of an event class: ``MeterSampled`` -> ``meter_sampled``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


def table(per_event: PerEvent[P, T]) -> dict[type[Event], Callable[Concatenate[Event, P], T]]:
    """The output's builders by event class, in ``EVENTS`` order; kinds it ignores are left out.

    Safe to call with any event of a key's class: ``type(event)`` picks the builder of that class.
    """
    out: dict[type[Event], Callable[Concatenate[Event, P], T]] = {}
    for cls in EVENTS:
        build = getattr(per_event, builder_name(cls))
        if build is not None:
            out[cls] = build
    return out


def console_events(*updates: ConsoleUpdate) -> tuple[type[Event], ...]:
    """The event classes the console reacts to with any of ``updates``."""
    return tuple(cls for cls, update in EVENTS.items() if update in updates)
