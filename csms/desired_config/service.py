"""The desired-configuration service: keeps the sets, applies them at boot and on change, and
answers drift and status questions. Decisions are ``csms.desired_config.rules``'; this is the I/O.

At every accepted boot the station is sent its whole effective set (a reboot may have reset
values); on a change of a set, each connected member is sent only what it has not applied with
its current value yet. At most ``concurrency`` stations are being configured at once. A boot's
set goes out ``boot_delay_s`` after the BootNotification, so the station has taken in the boot
answer first (its heartbeat interval would otherwise overwrite a desired ``HeartbeatInterval``).
A station that connects and does not boot within twice that delay (a reconnect) is sent what it
has not applied yet, as on a change: so a change made while it was offline reaches it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import structlog

from csms.core.events import Event, StationBooted, StationConnected
from csms.core.ports import Clock
from csms.desired_config.ports import GroupDirectory, StationConfig
from csms.desired_config.rules import (
    APPLIED,
    DesiredItem,
    DesiredSet,
    DriftEntry,
    KeyResult,
    ResultStatus,
    drift,
    effective,
    status_counts,
    to_send,
)
from csms.errors import StationNotConnected
from csms.store.desired_config import SqlDesiredConfig
from ocppj.versions import OcppVersion

log = structlog.get_logger("csms.desired_config")


@dataclass(frozen=True, slots=True)
class StationStatus:
    """A member's counts from the kept results (``protocol`` None: never seen)."""

    station_id: str
    protocol: OcppVersion | None
    connected: bool
    desired: int
    counts: dict[str, int]


class DesiredConfigService:
    """Desired sets in memory (loaded once, written through), applied to stations."""

    def __init__(
        self, store: SqlDesiredConfig, stations: StationConfig, groups: GroupDirectory, clock: Clock,
        *, protocol_of_registered: Callable[[str], OcppVersion | None], concurrency: int = 16,
        boot_delay_s: float = 1.0,
    ) -> None:
        self.store = store
        self.stations = stations
        self.groups = groups
        self.clock = clock
        self.sets: dict[str, DesiredSet] = {}
        self._protocol_of_registered = protocol_of_registered
        self._boot_delay_s = boot_delay_s
        self._booted: dict[str, float] = {}  # monotonic time of each station's latest boot
        self._not_accepted: set[str] = set()  # stations whose latest boot was refused: never called
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def load(self) -> None:
        self.sets = {s.group: s for s in await self.store.all_sets()}

    async def refresh_forever(self, every_s: float = 5.0) -> None:
        """Read the sets again every ``every_s``: with several core nodes a set kept through another
        node reaches this node's boots and reconnections this much later (the node that kept it sent
        it to every connected member itself)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.load()
            except Exception:
                log.exception("desired configuration sets not read again; kept as they were")

    # --- sets -----------------------------------------------------------------------------
    async def put(self, desired: DesiredSet) -> tuple[DesiredSet, bool, int]:
        """Keep ``desired`` and start applying it; (the set kept, created, connected members to apply to)."""
        kept = replace(desired, updated_at=self.clock.now())
        created = await self.store.put_set(kept)
        self.sets[kept.group] = kept
        members = await self.groups.members(kept.group)
        targets = [s for s in members
                   if self.stations.protocol_of(s) is not None and s not in self._not_accepted]
        if targets:
            self._track(asyncio.create_task(self._apply_all(targets), name=f"desired-config:{kept.group}"))
        return kept, created, len(targets)

    async def _apply_all(self, station_ids: list[str]) -> None:
        """Apply to each of ``station_ids``: at most ``concurrency`` at once, one task per slot."""
        todo = iter(station_ids)

        async def worker() -> None:
            for station_id in todo:
                await self._apply_logged(station_id, False, 0.0, None)

        await asyncio.gather(*(worker() for _ in range(min(self._concurrency, len(station_ids)))))

    async def delete(self, group: str) -> bool:
        """Forget the group's set; values already on stations stay as they are."""
        removed = await self.store.delete_set(group)
        self.sets.pop(group, None)
        return removed

    # --- applying -------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """A boot sends everything, a reconnection what is not applied; nothing while no set exists,
        and nothing to a station whose boot was refused (it must not be called until accepted)."""
        if isinstance(event, StationBooted):
            self._booted[event.station_id] = time.monotonic()
            if not event.accepted:
                self._not_accepted.add(event.station_id)
                return
            self._not_accepted.discard(event.station_id)
            if self.sets:
                self._start(event.station_id, at_boot=True, delay_s=self._boot_delay_s)
        elif isinstance(event, StationConnected) and self.sets and event.station_id not in self._not_accepted:
            self._start(event.station_id, at_boot=False, delay_s=2 * self._boot_delay_s,
                        unless_booted_since=time.monotonic())

    def _start(
        self, station_id: str, *, at_boot: bool, delay_s: float = 0.0,
        unless_booted_since: float | None = None,
    ) -> None:
        self._track(asyncio.create_task(self._apply_logged(station_id, at_boot, delay_s, unless_booted_since),
                                        name=f"desired-config:{station_id}"))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply_logged(
        self, station_id: str, at_boot: bool, delay_s: float, unless_booted_since: float | None
    ) -> None:
        try:
            await asyncio.sleep(delay_s)
            if unless_booted_since is not None and self._booted.get(station_id, -1.0) >= unless_booted_since:
                return  # it booted meanwhile: the boot sent everything
            await self.apply_to(station_id, at_boot=at_boot)
        except Exception:
            log.exception("desired configuration not applied", station_id=station_id)

    async def desired_for(self, station_id: str, version: OcppVersion) -> dict[str, DesiredItem]:
        return effective(self.sets, (await self.groups.groups_of([station_id]))[station_id], version)

    async def apply_to(self, station_id: str, *, at_boot: bool) -> list[KeyResult]:
        """Send the station what it should have (see the module) and keep every answer."""
        if not self.sets or station_id in self._not_accepted:
            return []
        lock = self._locks.setdefault(station_id, asyncio.Lock())
        async with lock, self._slots:
            version = self.stations.protocol_of(station_id)
            if version is None or station_id in self._not_accepted:
                return []
            desired = await self.desired_for(station_id, version)
            kept = (await self.store.results([station_id]))[station_id]
            stale = sorted(set(kept) - set(desired))
            if stale:  # answers for keys no longer desired: the kept answers stay bounded by the sets
                await self.store.forget_results(station_id, stale)
            items = to_send(desired, kept, at_boot=at_boot)
            if not items:
                return []
            answers = await self.stations.apply(station_id, version, items)
            at = self.clock.now()
            none = (ResultStatus.FAILED, "no answer for this key")
            results = []
            for item in items:
                status, detail = answers.get(item.key, none)
                results.append(KeyResult(item.key, item.value, status, at, detail))
            await self.store.save_results(station_id, results)
            log.info("desired configuration sent", station_id=station_id, at_boot=at_boot, keys=len(results),
                     not_applied=sum(1 for r in results if r.status not in APPLIED))
            return results

    async def idle(self) -> None:
        """Wait until every application started so far is done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- reports --------------------------------------------------------------------------
    async def drift(self, station_id: str) -> tuple[OcppVersion, list[DriftEntry]]:
        """Read the station's values live and compare them with the desired ones.

        Raises ``StationNotConnected`` (a ``ControlError``) when it is not connected.
        """
        version = self.stations.protocol_of(station_id)
        if version is None:
            raise StationNotConnected(f"station {station_id!r} is not connected")
        desired = await self.desired_for(station_id, version)
        readings = await self.stations.read(station_id, version, list(desired.values())) if desired else {}
        kept = (await self.store.results([station_id]))[station_id]
        return version, drift(desired, readings, kept)

    async def group_status(self, group: str, *, after: str | None, limit: int) -> list[StationStatus]:
        """Per-member counts from the kept results, members by id after ``after``; no station is asked."""
        members = [s for s in await self.groups.members(group) if after is None or s > after][:limit]
        kept = await self.store.results(members)
        groups = await self.groups.groups_of(members)
        out = []
        for station_id in members:
            version = self.stations.protocol_of(station_id)
            connected = version is not None
            version = version or self._protocol_of_registered(station_id)
            desired = effective(self.sets, groups[station_id], version) if version is not None else {}
            out.append(StationStatus(station_id, version, connected, len(desired),
                                     status_counts(desired, kept[station_id])))
        return out
