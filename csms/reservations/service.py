"""The reservation service: operator requests out to stations, station news and expiry in.

``reserve`` and ``cancel`` are the operator's (the API); every answer a station gives, or the
lack of one, is kept on the reservation. ``on_event`` (a bus handler) queues what stations said
(a transaction that consumed a reservation, a 2.0.1 ReservationStatusUpdate) for the worker
(``run``), which applies it in order and runs ``tick(now)`` every ``tick_s``: the decisions
that expire reservations, so one node alone may be made to run it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta

import structlog

from csms.cluster.elected import Elected, always
from csms.core.events import Event, ReservationConsumed, StationReported
from csms.core.ports import Clock
from csms.errors import CallErrorReceived, CallTimeout, ControlError, PayloadInvalid, StationNotConnected
from csms.ocpp.v201.reservations import status_update
from csms.reservations import rules
from csms.reservations.rules import OPEN, Reservation, ReservationRequest, Status
from csms.reservations.station import StationReservations
from csms.store.reservations import SqlReservations

log = structlog.get_logger("csms.reservations")

WATCHED: tuple[type[Event], ...] = (ReservationConsumed, StationReported)
STATUS_UPDATE = "ReservationStatusUpdate"
_USABLE = (*OPEN, Status.EXPIRED, Status.REMOVED)  # what a transaction may still consume

ParentOf = Callable[[str], Awaitable[str | None]]


class ReservationClash(Exception):
    """The station already holds an open reservation the request overlaps."""

    def __init__(self, held: Reservation) -> None:
        what = f"EVSE {held.evse_id}" if held.evse_id else "any EVSE"
        super().__init__(f"reservation {held.id} already holds {what} of {held.station_id}")
        self.held = held


class NotOpen(Exception):
    """The reservation has ended already (used, expired, cancelled, ...)."""


class StationRefused(Exception):
    """The station answered something other than Accepted; the reservation as kept."""

    def __init__(self, reservation: Reservation, answer: str) -> None:
        super().__init__(f"the station answered {answer}")
        self.reservation = reservation
        self.answer = answer


def _why(exc: ControlError) -> str:
    """What a reservation keeps of a call that got no usable answer."""
    if isinstance(exc, CallTimeout):
        return "timeout"
    if isinstance(exc, StationNotConnected):
        return "not_connected"
    if isinstance(exc, CallErrorReceived):
        return f"CallError:{exc.code}"[:32]
    if isinstance(exc, PayloadInvalid):
        return "not_sent"
    return "invalid_response"


class ReservationService:
    """Reservations of the stations of this CSMS; ``run`` is its worker."""

    def __init__(
        self, store: SqlReservations, stations: StationReservations, clock: Clock, *,
        max_duration: timedelta, tick_s: float = 1.0, parent_of: ParentOf | None = None,
        queue_max: int = 10_000,
    ) -> None:
        self.store = store
        self.stations = stations
        self.clock = clock
        self.max_duration = max_duration
        self.tick_s = tick_s
        self.parent_of = parent_of
        self._queue: asyncio.Queue[Event] = asyncio.Queue(queue_max)
        self.dropped = 0

    # --- the operator's -----------------------------------------------------------------
    async def reserve(self, req: ReservationRequest) -> Reservation:
        """Send ReserveNow; the reservation as the station's answer left it.

        Raises ``ReservationInvalid`` and ``ReservationClash`` (nothing kept or sent),
        ``StationNotConnected`` (nothing kept), ``StationRefused`` (kept ``rejected``) and the
        ``ControlError`` of a call that got no answer (kept ``failed``).
        """
        protocol = self.stations.protocol_of(req.station_id)
        if protocol is None:
            raise StationNotConnected(f"station {req.station_id} is not connected")
        now = self.clock.now()
        rules.check_request(req, protocol=protocol.value, now=now, max_duration=self.max_duration)
        held = rules.clashing(
            req, await self.store.list_reservations(station_id=req.station_id, open=True, limit=1000))
        if held is not None:
            raise ReservationClash(held)
        parent = await self.parent_of(req.id_tag) if self.parent_of is not None else None
        r = await self.store.create(req, now)
        try:
            answer = await self.stations.reserve(r, parent)
        except ControlError as exc:
            failed = rules.unanswered(r, _why(exc), self.clock.now())
            await self.store.save(failed, was=(Status.PENDING,))
            raise
        done = rules.answered(r, answer, self.clock.now())
        if not await self.store.save(done, was=(Status.PENDING,)):  # used or expired before the answer
            current = await self.store.get(r.id)
            if current is not None:
                done = replace(current, station_answer=answer)
                await self.store.save(done, was=(current.status,))
        if answer != "Accepted":
            raise StationRefused(done, answer)
        log.info("reserved", station_id=r.station_id, reservation_id=r.id, evse_id=r.evse_id)
        return done

    async def cancel(self, reservation_id: int) -> Reservation | None:
        """Send CancelReservation; None for an unknown id. ``NotOpen`` for an ended reservation,
        ``StationRefused`` when the station answered Rejected (the reservation stays open), a
        ``ControlError`` when no answer came (kept as the cancel answer)."""
        r = await self.store.get(reservation_id)
        if r is None:
            return None
        if not rules.cancellable(r):
            raise NotOpen(f"reservation {r.id} is {r.status.value}")
        try:
            answer = await self.stations.cancel(r.station_id, r.id)
        except ControlError as exc:
            await self.store.save(replace(r, cancel_answer=_why(exc)), was=OPEN)
            raise
        done = rules.cancelled(r, answer, self.clock.now())
        if not await self.store.save(done, was=OPEN):  # it ended meanwhile (used, expired)
            current = await self.store.get(r.id)
            raise NotOpen(f"reservation {r.id} is {current.status.value if current else 'gone'}")
        if done.status is not Status.CANCELLED:
            raise StationRefused(done, answer)
        log.info("reservation cancelled", station_id=r.station_id, reservation_id=r.id)
        return done

    async def get(self, reservation_id: int) -> Reservation | None:
        return await self.store.get(reservation_id)

    async def list_reservations(
        self, *, station_id: str | None = None, open: bool | None = None, limit: int = 100,
        before_id: int | None = None,
    ) -> list[Reservation]:
        return await self.store.list_reservations(
            station_id=station_id, open=open, limit=limit, before_id=before_id)

    # --- the stations' ------------------------------------------------------------------
    def on_event(self, ev: Event) -> None:
        """Bus handler: queue what the worker applies (a full queue drops and counts)."""
        if isinstance(ev, StationReported) and ev.action != STATUS_UPDATE:
            return
        try:
            self._queue.put_nowait(ev)
        except asyncio.QueueFull:
            self.dropped += 1

    async def apply(self, ev: Event) -> Reservation | None:
        """Apply one station event; the reservation it changed, if any."""
        now = self.clock.now()
        if isinstance(ev, ReservationConsumed):
            r = await self.store.get(ev.reservation_id)
            used = rules.consumed(r, ev.station_id, ev.tx_id, now) if r is not None else None
            if used is not None and await self.store.save(used, was=_USABLE):
                log.info("reservation used", station_id=ev.station_id, reservation_id=ev.reservation_id,
                         tx_id=ev.tx_id)
                return used
            return None
        if isinstance(ev, StationReported):
            update = status_update(ev.data)
            if update is None:
                return None
            r = await self.store.get(update[0])
            if r is None or r.station_id != ev.station_id:
                return None
            changed = rules.station_update(r, update[1], now)
            if changed is not None and await self.store.save(changed, was=OPEN):
                return changed
        return None

    async def tick(self, now: datetime) -> list[Reservation]:
        """Expire every open reservation whose time has come; the ones expired."""
        expired = []
        for r in await self.store.due(now):
            done = rules.expire(r, now) if rules.due(r, now) else None
            if done is not None and await self.store.save(done, was=OPEN):
                expired.append(done)
        if expired:
            log.info("reservations expired", count=len(expired))
        return expired

    async def run(self, *, elected: Elected = always) -> None:
        """The worker: station events in order, and a tick every ``tick_s`` while ``elected()``."""
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            timeout = max(0.0, next_tick - loop.time())
            ev: Event | None = None
            with contextlib.suppress(TimeoutError):
                ev = await asyncio.wait_for(self._queue.get(), timeout)
            try:
                if ev is not None:
                    await self.apply(ev)
                if loop.time() >= next_tick:
                    next_tick = loop.time() + self.tick_s
                    if elected():
                        await self.tick(self.clock.now())
            except Exception:  # a store outage: the next tick tries again; an event is lost, logged
                log.exception("reservation update failed", event=type(ev).__name__ if ev else "tick")
