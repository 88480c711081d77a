"""The local-list service: keeps each connected station's list in step with the registry.

Its decisions are in ``tick(now)``: stations whose version is due for a check (after a boot or a
reconnection) and, once id-tag or policy changes have settled (``rules.Debounce``), every
connected station. ``run`` is the one worker: it queues what ``tick`` asks (each station once) and
sends the queue out in batches, each reading the registry once. ``sync`` does one station: read
its bounds (and version when checking), plan with ``rules.plan``, send each message, and record
each accepted one; any refusal or failed call leaves the station out of sync and publishes
``LocalListSynced(ok=False)`` (the alarm's cue).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from csms.cluster.elected import Elected, always
from csms.config import LocalListsConfig
from csms.core.events import Event, IdTagsChanged, LocalListSynced, StationBooted, StationConnected
from csms.core.model import IdTag
from csms.core.ports import Clock
from csms.errors import ControlError, CsmsError
from csms.local_lists.ocpp import ListPort
from csms.local_lists.rules import (
    Debounce,
    Limits,
    ListTooLong,
    Policy,
    SendStatus,
    apply,
    current,
    desired,
    digest,
    plan,
    selection,
)
from csms.store.local_lists import SqlLocalLists, StationListState

log = structlog.get_logger("csms.local_lists")

WATCHED: tuple[type[Event], ...] = (StationBooted, StationConnected, IdTagsChanged)
TICK_S = 0.2


@dataclass(frozen=True, slots=True)
class SyncRequest:
    station_id: str
    check_version: bool = False  # ask the station's version first (a mismatch: Full)
    force_full: bool = False


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What one sync did: ``ok`` when the station now holds what its policy says."""

    station_id: str
    ok: bool
    reason: str  # the plan's reason, or no_policy / not_connected / failed
    version: int | None = None
    update_type: str | None = None
    messages: int = 0
    items: int = 0
    detail: str = ""


class _Failed(Exception):
    pass


class LocalListService:
    """Plans and sends local lists; ``run`` is its worker."""

    def __init__(
        self, store: SqlLocalLists, port: ListPort, clock: Clock, cfg: LocalListsConfig, *,
        groups_of: Callable[[str], Awaitable[Sequence[str]]], connected: Callable[[], Iterable[str]],
        publish: Callable[[Event], None], on_sent: Callable[[str, int], None] = lambda _t, _n: None,
    ) -> None:
        self.store = store
        self.port = port
        self.clock = clock
        self.cfg = cfg
        self.groups_of = groups_of
        self.connected = connected
        self.publish = publish
        self.on_sent = on_sent  # (update type, items) per accepted message, for metrics
        self._checks: dict[str, datetime] = {}
        self._not_accepted: set[str] = set()  # stations whose latest boot was refused: never called
        self._debounce = Debounce(cfg.debounce_s, cfg.max_delay_s)
        self._reconcile_at = clock.now() + timedelta(seconds=cfg.reconcile_s) if cfg.reconcile_s else None
        self._limits: dict[str, Limits] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(cfg.concurrency)
        self._wake = asyncio.Event()
        self._queue: dict[str, SyncRequest] = {}  # the worker's, one request per station, in order
        self.waiting = 0  # stations of the running batches not yet given a slot
        self.batches = 0  # batches started: the registry is read once for each

    # --- in: events --------------------------------------------------------------------
    def on_event(self, ev: Event) -> None:
        """Bus handler: a (re)connected station gets its version checked; a change of id tags
        starts (or extends) the debounce of a round of updates."""
        now = self.clock.now()
        if isinstance(ev, StationBooted) and not ev.accepted:  # it must not be called until accepted
            self._not_accepted.add(ev.station_id)
            self._checks.pop(ev.station_id, None)
            return
        if isinstance(ev, StationBooted):
            self._not_accepted.discard(ev.station_id)
        if isinstance(ev, StationBooted | StationConnected):
            self._limits.pop(ev.station_id, None)  # a new connection: its bounds may have changed
            delay = 0.0 if isinstance(ev, StationBooted) else self.cfg.connect_check_s
            due = now + timedelta(seconds=delay)
            self._checks[ev.station_id] = min(due, self._checks.get(ev.station_id, due))
        elif isinstance(ev, IdTagsChanged):
            self.changed()
        self._wake.set()

    def changed(self) -> None:
        """The id tags or the policies changed: every connected station is due once they settle."""
        self._debounce = self._debounce.changed(self.clock.now())
        self._wake.set()

    # --- decisions -----------------------------------------------------------------------
    def tick(self, now: datetime, *, elected: bool = True) -> list[SyncRequest]:
        """The syncs due at ``now``: version checks whose time came, and every connected station
        once the debounce of id-tag changes has elapsed or the periodic reconciliation is due
        (it catches what no event announces: tags changed by another process, group membership), the
        latter only where this node is ``elected`` to run it."""
        out: list[SyncRequest] = []
        reconcile = self._reconcile_at is not None and now >= self._reconcile_at
        if reconcile:
            self._reconcile_at = now + timedelta(seconds=self.cfg.reconcile_s)
            reconcile = elected
        for station_id, at in list(self._checks.items()):
            if at <= now:
                del self._checks[station_id]
                if station_id not in self._not_accepted:
                    out.append(SyncRequest(station_id, check_version=True))
        if reconcile or self._debounce.due(now):
            self._debounce = self._debounce.reset()
            seen = {r.station_id for r in out}
            out += [SyncRequest(s) for s in sorted(self.connected())
                    if s not in seen and s not in self._not_accepted]
        return out

    async def run(self, *, elected: Elected = always) -> None:
        """The one worker: every few hundred milliseconds (sooner when an event arrives) ``tick``'s
        requests join the queue, which holds one request per station (a station asked for twice is
        synced once, with both requests' needs). The queue is taken as one batch, the registry read
        once for all of it, when no station of an earlier batch still waits for one of the
        ``concurrency`` slots: a reconnect burst makes a few large batches, and a slow station does
        not hold up the next batch. The periodic reconciliation of every connected station runs only
        while ``elected()``; ``connected`` names the stations this node serves, so with several core
        nodes each reconciles its own (the plugin passes ``always``)."""
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                for request in self.tick(self.clock.now(), elected=elected()):
                    self._enqueue(request)
                if self._queue and not self.waiting:
                    batch = list(self._queue.values())
                    self._queue.clear()
                    self.waiting += len(batch)
                    self.batches += 1
                    task = asyncio.create_task(self._batch(batch), name="local-list-batch")
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), TICK_S)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _enqueue(self, request: SyncRequest) -> None:
        had = self._queue.get(request.station_id)
        if had is not None:
            request = SyncRequest(request.station_id, had.check_version or request.check_version,
                                  had.force_full or request.force_full)
        self._queue[request.station_id] = request

    def _started(self, count: int = 1) -> None:
        """``count`` stations of a batch got their slot (or will never need one)."""
        self.waiting -= count
        if not self.waiting and self._queue:
            self._wake.set()  # the queue may go out as the next batch now

    async def _batch(self, requests: list[SyncRequest]) -> None:
        """Sync ``requests`` (the registry and the policies read once for all of them)."""
        try:
            tags = await self.store.list_tags()
            policies = {p.scope: p for p in await self.store.policies()}
        except BaseException as exc:
            self._started(len(requests))
            if isinstance(exc, CsmsError):
                log.exception("local lists: cannot read the id tags; the stations stay as they are")
                return
            raise

        async def one(request: SyncRequest) -> None:
            started = False

            def start() -> None:
                nonlocal started
                started = True
                self._started()

            try:
                await self.sync(request, tags=tags, policies=policies, on_start=start)
            except CsmsError:
                log.exception("local list sync failed", station=request.station_id)
            finally:
                if not started:
                    self._started()

        await asyncio.gather(*(one(r) for r in requests))

    # --- one station -----------------------------------------------------------------------
    async def sync(
        self, request: SyncRequest, *, tags: Sequence[tuple[IdTag, str | None]] | None = None,
        policies: Mapping[str, Policy] | None = None, on_start: Callable[[], None] | None = None,
    ) -> SyncOutcome:
        """Bring one station's list to what its policy says (see the module docstring); ``on_start``
        is called once the station's turn and one of the slots came, or at once when the station
        waits for a sync of its own still running (a slow station holds up no other batch)."""
        station_id = request.station_id
        lock = self._locks.setdefault(station_id, asyncio.Lock())  # one sync per station at a time
        if on_start is not None and lock.locked():  # waiting for its own sync: not for a slot
            on_start()
            on_start = None
        async with lock, self._slots:
            if on_start is not None:
                on_start()
            return await self._sync(request, tags, policies)

    async def _sync(
        self, request: SyncRequest, tags: Sequence[tuple[IdTag, str | None]] | None,
        policies: Mapping[str, Policy] | None,
    ) -> SyncOutcome:
        sid = request.station_id
        if not self.port.connected(sid):
            return SyncOutcome(sid, False, "not_connected", detail="the station is not connected")
        if sid in self._not_accepted:
            return SyncOutcome(sid, False, "not_accepted", detail="the station's boot was not accepted")
        if policies is None:
            policies = {p.scope: p for p in await self.store.policies()}
        chosen = selection(policies, await self.groups_of(sid))
        if chosen is None:
            return SyncOutcome(sid, True, "no_policy", detail="no local-list policy covers the station")
        known = None
        try:
            limits = self._limits.get(sid)
            if limits is None:
                limits = self._limits[sid] = await self.port.limits(sid, self.cfg.items_per_message)
            station_version = await self.port.version(sid) if request.check_version else None
            if station_version is not None and station_version < 0:
                raise _Failed("the station does not support local authorization lists")
            if tags is None:
                tags = await self.store.list_tags()
            want = desired(tags, chosen, limits)
            wanted = digest(want)
            state = await self.store.state(sid)
            if state is not None and current(
                state.version, state.in_sync, state.digest, wanted, station_version=station_version,
                force_full=request.force_full,
            ):  # the common case of a reconnection or a change elsewhere: nothing to read or send
                await self.store.confirmed(sid, state.version, wanted)
                self.publish(LocalListSynced(station_id=sid, ok=True, version=state.version))
                return SyncOutcome(sid, True, "up_to_date", state.version)
            known = await self.store.known(sid)
            todo = plan(known, want, limits, station_version=station_version, full_ratio=self.cfg.full_ratio,
                        force_full=request.force_full)
        except ListTooLong as exc:
            return await self._fail(sid, f"the list does not fit: {exc}")
        except ControlError as exc:
            return await self._fail(sid, f"{type(exc).__name__}: {exc}")
        except _Failed as exc:
            return await self._fail(sid, str(exc))
        if not todo.messages:
            assert known is not None
            await self.store.confirmed(sid, known.version, wanted)
            self.publish(LocalListSynced(station_id=sid, ok=True, version=known.version))
            return SyncOutcome(sid, True, todo.reason, known.version)
        entries = dict(known.entries) if known is not None else {}
        last = len(todo.messages) - 1
        for i, message in enumerate(todo.messages):
            try:
                status = await self.port.send(sid, message)
            except ControlError as exc:
                return await self._fail(sid, f"SendLocalList: {type(exc).__name__}: {exc}")
            if status is not SendStatus.ACCEPTED:
                return await self._fail(
                    sid,
                    f"SendLocalList {message.update_type.value} version {message.version}: {status.value}",
                )
            entries = apply(entries, message)
            await self.store.accepted(sid, message, entries=len(entries), in_sync=i == last,
                                      digest=wanted if i == last else None)
            self.on_sent(message.update_type.value, len(message.changes))
        version = todo.messages[-1].version
        kind = todo.messages[0].update_type.value
        log.info("local list updated", station=sid, reason=todo.reason, update_type=kind, version=version,
                 messages=len(todo.messages), items=todo.items)
        self.publish(LocalListSynced(station_id=sid, ok=True, version=version, update_type=kind))
        return SyncOutcome(sid, True, todo.reason, version, kind, len(todo.messages), todo.items)

    async def _fail(self, station_id: str, detail: str) -> SyncOutcome:
        log.warning("local list out of sync", station=station_id, detail=detail)
        await self.store.failed(station_id, detail)
        self.publish(LocalListSynced(station_id=station_id, ok=False, detail=detail))
        return SyncOutcome(station_id, False, "failed", detail=detail)

    async def sent_by_hand(self, station_id: str, detail: str) -> None:
        """A SendLocalList went out by another way than this service (the raw action route): the
        station's list is no longer known, so it is recorded out of sync and its next sync is Full."""
        await self.store.failed(station_id, detail)

    # --- views -----------------------------------------------------------------------------
    async def state(self, station_id: str) -> StationListState | None:
        return await self.store.state(station_id)

    async def forget(self, station_id: str) -> None:
        """A removed station: its recorded list goes, and no check is pending for it."""
        self._checks.pop(station_id, None)
        self._limits.pop(station_id, None)
        self._queue.pop(station_id, None)
        await self.store.forget(station_id)

    async def states(self, *, after: str | None = None, limit: int = 100) -> list[StationListState]:
        return await self.store.states(after=after, limit=limit)

    async def policy(self, scope: str) -> Policy | None:
        return await self.store.policy(scope)

    async def policies(self, *, after: str | None = None, limit: int | None = None) -> list[Policy]:
        return await self.store.policies(after=after, limit=limit)

    async def put_policy(self, policy: Policy) -> bool:
        """Create or replace a policy (True: created); every connected station is updated."""
        created = await self.store.put_policy(policy)
        self.changed()
        self.publish(IdTagsChanged())  # the other core nodes' stations too ("possibly any" tag)
        return created

    async def delete_policy(self, scope: str) -> bool:
        """Remove a policy; stations keep the list they hold (no policy: not managed)."""
        removed = await self.store.delete_policy(scope)
        if removed:
            self.changed()
            self.publish(IdTagsChanged())
        return removed
