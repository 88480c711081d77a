"""Station events: the station->CSMS messages the CSMS keeps (notifications, reports, DataTransfer...).

``StationEventLog`` takes them on the hot path without waiting for the database: it buffers them
(bounded) and writes them behind in batches; each persisted event is published as
``StationReported``. A full buffer drops new events, counts them and logs a warning.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from csms.core.events import Event, StationReported

log = logging.getLogger(__name__)

MAX_PENDING = 50_000  # station events buffered before a flush; beyond it new ones are dropped (counted)
MAX_PAGE = 1000  # station events per page of the API


@dataclass(frozen=True, slots=True)
class StationEvent:
    """One kept message: ``at`` is the CSMS's receive time (UTC), ``station_time`` the message's
    own timestamp if it has one, ``type`` the OCPP action, ``data`` the payload as received."""

    id: int | None
    station_id: str
    at: datetime
    station_time: datetime | None
    type: str
    data: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class SignedMeterValue:
    """A signed meter reading kept with its transaction (1.6 ``SignedData``, 2.0.1 ``signedMeterValue``).

    ``data`` is the signed blob as sent; ``encoding`` its format (1.6: ``SignedData``; 2.0.1:
    ``encodingMethod``); ``signing_method`` and ``public_key`` are 2.0.1's (empty in 1.6).
    """

    station_id: str
    tx_id: str
    at: datetime
    station_time: datetime | None
    context: str | None
    measurand: str | None
    encoding: str | None
    signing_method: str | None
    public_key: str | None
    data: str


@dataclass(frozen=True, slots=True)
class EventQuery:
    """A page of one station's events, newest first: ``before_id`` is the cursor (exclusive)."""

    station_id: str
    type: str | None = None
    since: datetime | None = None
    limit: int = 100
    before_id: int | None = None


class StationEventStore(Protocol):
    """Durable station events and signed meter values."""

    async def save_station_events(self, events: Sequence[StationEvent]) -> list[int]: ...
    async def list_station_events(self, query: EventQuery) -> list[StationEvent]: ...
    async def prune_station_events(self, before: datetime) -> int: ...
    async def save_signed_meter_values(self, values: Sequence[SignedMeterValue]) -> None: ...
    async def list_signed_meter_values(self, station_id: str, tx_id: str) -> list[SignedMeterValue]: ...


class StationEventLog:
    """Buffer station events and write them behind; publish each as ``StationReported`` once stored.

    ``counts`` is the number persisted per action and ``dropped`` the number lost to a full
    buffer (both exported in /metrics). A failed flush puts the batch back, in order.
    """

    def __init__(
        self, store: StationEventStore, publish: Callable[[Event], None], now: Callable[[], datetime], *,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.store = store
        self.publish = publish
        self.now = now
        self.max_pending = max_pending
        self.counts: Counter[str] = Counter()
        self.dropped = 0
        self._pending: list[StationEvent] = []
        self._signed: list[SignedMeterValue] = []

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(
        self, station_id: str, action: str, data: Mapping[str, object], station_time: datetime | None
    ) -> None:
        """Keep one message (written at the next flush)."""
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("station event buffer full (%d): %s %s dropped, %d dropped so far",
                            self.max_pending, station_id, action, self.dropped)
            return
        self._pending.append(StationEvent(None, station_id, self.now(), station_time, action, data))

    def record_signed(self, values: Sequence[SignedMeterValue]) -> None:
        """Signed meter values of a MeterValues message, written at the next flush (never dropped)."""
        self._signed.extend(values)

    async def flush(self) -> None:
        """Write the buffered events in one batch, then publish them; on failure keep them."""
        if self._signed:
            signed, self._signed = self._signed, []
            try:
                await self.store.save_signed_meter_values(signed)
            except BaseException:
                self._signed = signed + self._signed
                raise
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            ids = await self.store.save_station_events(batch)
        except BaseException:
            self._pending = batch + self._pending
            raise
        for ev, record_id in zip(batch, ids, strict=True):
            self.counts[ev.type] += 1
            self.publish(StationReported(
                station_id=ev.station_id, ts=ev.at, action=ev.type, data=ev.data,
                station_time=ev.station_time, record_id=record_id,
            ))
