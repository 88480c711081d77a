"""The alarm service: domain events and a periodic tick in, stored alarm transitions out.

``on_event`` (a bus handler) runs the pure rules (``csms.core.alarms``) and queues the decisions
that change something; one worker (``run``) applies them in order: it stores the transition,
publishes ``AlarmChanged`` (MQTT) and hands the alarm to ``notify`` (the webhook). The same
worker evaluates ``station_offline`` every ``tick_s``. Active alarms are reloaded by ``load``,
so a restart neither loses nor duplicates them.

``on_event`` admits a decision against the state the key will have once everything queued for it
is applied (the last decision queued per key, else the book), never against the book alone:
the book lags the queue by one store write. A transition the store refuses is retried with
back-off (in order, the worker waits) for up to ``retry_total_s``, then logged and counted as lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from csms.cluster.elected import Elected, always
from csms.core.alarms import (
    ACK_ONLY,
    Alarm,
    AlarmBook,
    AlarmKey,
    AlarmTransition,
    Clear,
    Decision,
    Kind,
    Raise,
    Thresholds,
    acknowledge,
    decide,
    offline,
)
from csms.core.events import (
    AlarmChanged,
    ClockOffsetMeasured,
    CommandFailed,
    Event,
    LocalListSynced,
    SecurityEventReported,
    StationConnected,
    StationDisconnected,
    StationReported,
    StatusChanged,
    TransactionEnded,
    TransactionStarted,
)
from csms.core.ports import Clock
from csms.core.service import LiveStation
from csms.store.alarms import SqlAlarms

log = structlog.get_logger("csms.alarms")

REMOVED_ACTOR = "system"
"""The actor of the clears of a removed station's alarms."""


@dataclass(frozen=True, slots=True)
class Removed(Clear):
    """Clear an alarm of a station no longer registered, whatever its kind (``ACK_ONLY`` too)."""

WATCHED: tuple[type[Event], ...] = (
    StatusChanged, StationReported, SecurityEventReported, ClockOffsetMeasured, TransactionStarted,
    TransactionEnded, CommandFailed, StationConnected, StationDisconnected, LocalListSynced,
)
"""The events the rules read."""


def changed_event(alarm: Alarm) -> AlarmChanged:
    """The bus event of ``alarm``'s current state."""
    return AlarmChanged(
        station_id=alarm.charger_id, alarm_id=alarm.id, kind=alarm.kind.value, severity=alarm.severity.value,
        state=alarm.state.value, detail=alarm.detail, raised_at=alarm.raised_at, cleared_at=alarm.cleared_at,
        acknowledged_at=alarm.acknowledged_at, acknowledged_by=alarm.acknowledged_by,
    )


class AlarmService:
    """Raises, clears and acknowledges alarms; ``run`` is its worker."""

    def __init__(
        self, store: SqlAlarms, live: Mapping[str, LiveStation], clock: Clock, limits: Thresholds, *,
        publish: Callable[[Event], None], notify: Callable[[Alarm], None] = lambda _a: None,
        tick_s: float = 5.0, queue_max: int = 100_000, on_lost: Callable[[], None] = lambda: None,
        retry_initial_s: float = 0.5, retry_max_s: float = 15.0, retry_total_s: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.live = live
        self.elsewhere: Callable[[str], bool] = lambda _station_id: False  # served by another core now
        # several core nodes: each reads the active alarms again every tick (another node raises and
        # clears too); the evaluating node reads the registered stations and when they were last seen
        self.shared = False
        self._registered: dict[str, datetime | None] | None = None  # from the store, when shared
        self.clock = clock
        self.limits = limits
        self.publish = publish
        self.notify = notify
        self.tick_s = tick_s
        self.book = AlarmBook()
        self.since = clock.now()  # the CSMS's own downtime is not the stations' silence
        self._queue: asyncio.Queue[Decision] = asyncio.Queue(queue_max)
        self._lock = asyncio.Lock()
        self._queued: dict[AlarmKey, Decision] = {}  # the last decision queued per key, not yet applied
        self.on_lost = on_lost
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.retry_total_s = retry_total_s
        self._sleep = sleep
        self.dropped = 0
        self.lost = 0

    async def load(self) -> None:
        """Reload the active alarms from the store."""
        self.book = AlarmBook(await self.store.active_alarms())

    # --- in: events and ticks -------------------------------------------------------------
    def on_event(self, ev: Event) -> None:
        """Bus handler: queue the decisions ``ev`` leads to that change something."""
        if isinstance(ev, StationConnected):
            decisions: list[Decision] = [Clear(AlarmKey(ev.station_id, Kind.STATION_OFFLINE))]
        elif isinstance(ev, StationDisconnected):
            station = self.live.get(ev.station_id)
            found = offline(ev.station_id, station.last_seen_at if station else None, self.clock.now(),
                            self.limits, self.since)
            decisions = [found] if found is not None else []
        else:
            decisions = decide(ev, self.limits)
        for decision in decisions:
            if self._changes(decision):
                self._offer(decision)

    def _changes(self, decision: Decision) -> bool:
        """Whether ``decision`` changes the key's state as it will be once the queue is applied."""
        last = self._queued.get(decision.key)
        if isinstance(decision, Removed):
            return decision.key in self.book.active if last is None else not isinstance(last, Removed)
        if last is None:
            return self.book.admit(decision) is not None
        if isinstance(decision, Raise):
            return isinstance(last, Clear)
        return isinstance(last, Raise) and decision.key.kind not in ACK_ONLY

    def _offer(self, decision: Decision) -> None:
        try:
            self._queue.put_nowait(decision)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("alarm decision dropped: queue full", kind=decision.key.kind.value,
                        charger=decision.key.charger_id)
        else:
            self._queued[decision.key] = decision

    def tick(self) -> list[Decision]:
        """``station_offline`` over the live stations, and the clear of every active alarm of a
        station no longer registered (removed stations leave ``live``): the decisions that change
        something."""
        now = self.clock.now()
        cutoff = now - timedelta(seconds=self.limits.offline_after_s)
        already = {k.charger_id for k in self.book.active if k.kind is Kind.STATION_OFFLINE}
        out: list[Decision] = []
        for station_id, last_seen in self._last_seen():
            seen = now if self.elsewhere(station_id) else last_seen
            if seen is None or (seen < cutoff) == (station_id in already):
                continue  # the common case: nothing changes, nothing is built
            found = offline(station_id, seen, now, self.limits, self.since)
            if found is not None and self._changes(found):
                out.append(found)
        for key in list(self.book.active):
            if not self._registered_now(key.charger_id) and self._changes(gone := Removed(key)):
                out.append(gone)
        return out

    def _last_seen(self) -> list[tuple[str, datetime | None]]:
        """(station, last seen) of every registered station: this node's memory, or with several
        nodes the store's record, or this node's memory where it is later (a station served here)."""
        if self._registered is None:
            return [(s.station_id, s.last_seen_at) for s in list(self.live.values())]
        out = []
        for station_id, stored in self._registered.items():
            here = self.live.get(station_id)
            seen = here.last_seen_at if here is not None else None
            later = stored is None or (seen is not None and seen > stored)
            out.append((station_id, seen if later else stored))
        return out

    def _registered_now(self, station_id: str) -> bool:
        return station_id in self.live or (self._registered is not None and station_id in self._registered)

    async def refresh(self, *, evaluating: bool) -> None:
        """With several core nodes: the active alarms as the store has them (raised or cleared through
        any node), and, for the node evaluating ``station_offline``, the registered stations."""
        async with self._lock:
            self.book = AlarmBook(await self.store.active_alarms())
        self._registered = await self.store.stations_seen() if evaluating else None

    async def run(self, *, elected: Elected = always) -> None:
        """Apply queued decisions in order; evaluate the tick every ``tick_s`` while ``elected()`` (its
        decisions join the queue, behind the ones already waiting)."""
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            if loop.time() >= next_tick:
                evaluating = elected()
                if self.shared:
                    try:
                        await self.refresh(evaluating=evaluating)
                    except Exception:  # a store outage: the next tick reads again
                        log.exception("active alarms not read again")
                        evaluating = False
                for decision in self.tick() if evaluating else ():
                    self._offer(decision)
                next_tick = loop.time() + self.tick_s
            with contextlib.suppress(TimeoutError):
                decision = await asyncio.wait_for(self._queue.get(), max(0.0, next_tick - loop.time()))
                try:
                    await self._apply_retried(decision)
                finally:
                    if self._queued.get(decision.key) is decision:
                        del self._queued[decision.key]

    async def _apply_retried(self, decision: Decision) -> None:
        """``apply``; a failure (a store outage) is retried with back-off, the decisions behind it
        waiting, for up to ``retry_total_s``; then the decision is logged and counted as lost."""
        waited, wait, attempt = 0.0, self.retry_initial_s, 1
        while True:
            try:
                await self.apply(decision)
                return
            except Exception as exc:  # the worker must outlive a store outage
                if waited + wait > self.retry_total_s:
                    self.lost += 1
                    self.on_lost()
                    log.error("alarm transition lost: not stored", kind=decision.key.kind.value,
                              charger=decision.key.charger_id, subject=decision.key.subject,
                              decision=type(decision).__name__, attempts=attempt,
                              error=f"{type(exc).__name__}: {exc}", exc_info=True)
                    return
                log.warning("alarm transition not stored, retrying", kind=decision.key.kind.value,
                            charger=decision.key.charger_id, attempt=attempt, retry_in_s=wait,
                            error=f"{type(exc).__name__}: {exc}")
            await self._sleep(wait)
            waited += wait
            wait = min(self.retry_max_s, wait * 2)
            attempt += 1

    # --- transitions ----------------------------------------------------------------------
    async def apply(self, decision: Decision) -> Alarm | None:
        """Store one decision if it still changes something; the alarm as it is now."""
        async with self._lock:
            removed = isinstance(decision, Removed)
            if removed:
                if decision.key not in self.book.active or self._registered_now(decision.key.charger_id):
                    return None  # registered again meanwhile: its alarms stand
            elif self.book.admit(decision) is None:
                return None
            now = self.clock.now()
            if isinstance(decision, Raise):
                alarm = await self.store.raise_alarm(decision.key, decision.severity, decision.detail, now)
                log.warning("alarm raised", id=alarm.id, kind=alarm.kind.value, charger=alarm.charger_id,
                            detail=alarm.detail)
            else:
                current = self.book.get(decision.key)
                assert current is not None
                if removed:
                    cleared = await self.store.clear_alarm(current.id, now, REMOVED_ACTOR)
                else:
                    cleared = await self.store.clear_alarm(current.id, now)
                if cleared is None:
                    return None
                alarm = cleared
                log.info("alarm cleared", id=alarm.id, kind=alarm.kind.value, charger=alarm.charger_id,
                         station_removed=removed)
            self.book.changed(alarm)
            self._announce(alarm)
            return alarm

    async def acknowledge(self, alarm_id: int, actor: str) -> Alarm | None:
        """Acknowledge an alarm (idempotent: acknowledged already, it is returned as it is);
        None for an unknown id."""
        async with self._lock:
            alarm = await self.store.get_alarm(alarm_id)
            if alarm is None or alarm.acknowledged_at is not None:
                return alarm
            stored = await self.store.save_acknowledged(acknowledge(alarm, self.clock.now(), actor))
            if stored is None:
                return None
            self.book.changed(stored)
            self._announce(stored)
            log.info("alarm acknowledged", id=stored.id, kind=stored.kind.value, by=actor)
            return stored

    def _announce(self, alarm: Alarm) -> None:
        self.publish(changed_event(alarm))
        self.notify(alarm)

    # --- reads for the API ----------------------------------------------------------------
    async def get(self, alarm_id: int) -> Alarm | None:
        return await self.store.get_alarm(alarm_id)

    async def list_alarms(
        self, *, active: bool, charger_id: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[Alarm]:
        return await self.store.list_alarms(active=active, charger_id=charger_id, limit=limit,
                                            before_id=before_id)

    async def history(self, alarm_id: int) -> list[AlarmTransition]:
        return await self.store.alarm_history(alarm_id)
