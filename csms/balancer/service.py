"""The async balancer: keeps a snapshot of demand from domain events, runs the pure
``allocate`` on a tick (and soon after plug-ins, stops and limit changes), and sends the
meaningful changes to stations as OCPP charging profiles.

Safety rules (shared/RELIABILITY.md D8):
- decreases are sent, and answered, before any increase is sent;
- a station that rejects a profile, fails to answer, or is disconnected during a session
  is counted as drawing what it may draw (its EVSE maximum, or the last limit it
  accepted), never as zero;
- at connect every station gets a TxDefaultProfile per EVSE with its *fail-safe share*:
  the allocation it would get if every EVSE in the tree charged at once, so a station
  that loses the CSMS keeps within its share.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from csms.balancer.allocate import (
    Allocation,
    AllocationSettings,
    Demand,
    EvseAllocation,
    allocate,
)
from csms.balancer.topology import EvseKey, Topology
from csms.bus import Bus
from csms.cluster.elected import Elected, always
from csms.core.commands import ChargingLimit, CommandStatus
from csms.core.events import (
    Event,
    MeterSampled,
    StationConnected,
    StationDisconnected,
    TransactionEnded,
    TransactionStarted,
)
from csms.core.feeders import ChargerLoad, FeederLoad, display_a
from csms.core.ports import LimitSender
from csms.errors import CsmsError

if TYPE_CHECKING:
    from csms.cluster.events import ClusterBus

log = structlog.get_logger("csms.balancer")

TX_PROFILE_ID = 900_000
DEFAULT_PROFILE_ID = 800_000


@dataclass(slots=True)
class _EvseState:
    tx_id: str | None = None
    plugged_at: float | None = None
    measured_a: tuple[float, ...] | None = None
    connected: bool = True
    fixed_a: float | None = None  # rejected / failed profile, or offline mid-session
    sent: tuple[float, int] | None = None  # last (limit, phases) the station accepted
    sent_at: float = 0.0


@dataclass(frozen=True, slots=True)
class BalancerStats:
    ticks: int
    profiles_sent: int
    profiles_failed: int
    last_duration_s: float


class BalancerService:
    """Owns the topology at run time and the per-EVSE control state."""

    def __init__(
        self,
        topology: Topology,
        sender: LimitSender,
        *,
        tick_s: float = 5.0,
        min_interval_per_station_s: float = 5.0,
        settings: AllocationSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_allocation: Callable[[Allocation], None] | None = None,
        meter_max_age_s: float = 0.0,
        ev_max_a: Callable[[str, int], float | None] | None = None,
    ) -> None:
        self.topology = topology
        self.sender = sender
        self.tick_s = tick_s
        self.min_interval_s = min_interval_per_station_s
        self.settings = settings or AllocationSettings()
        self.clock = clock
        self.on_allocation = on_allocation
        self.ev_max_a = ev_max_a or _unknown  # the EV's own most current per EVSE (NotifyEVChargingNeeds)
        self.previous: Allocation | None = None
        self.state: dict[EvseKey, _EvseState] = {}
        self._poke = asyncio.Event()
        self._lock = asyncio.Lock()
        self.ticks = self.sent_count = self.failed_count = 0
        self.last_duration_s = 0.0
        self._failsafe = self._failsafe_shares(topology)
        self.meter_max_age_s = meter_max_age_s  # 0: a silent node meter is never considered stale
        # node id -> clock() at which its last reading was taken; ``metered`` nodes are watched
        # from start-up (a meter that is already dead then still makes its node full)
        now = clock()
        self._meter_seen: dict[str, float] = {n.id: now for n in topology.nodes if n.metered}
        self.stale_meters: set[str] = set()
        self._too_old_logged: set[str] = set()

    # --- events in --------------------------------------------------------------------
    def attach(self, bus: Bus | ClusterBus) -> None:
        bus.subscribe(
            self.on_event,
            TransactionStarted,
            TransactionEnded,
            MeterSampled,
            StationConnected,
            StationDisconnected,
        )

    def on_event(self, event: Event) -> None:
        if isinstance(event, MeterSampled):
            s = event.sample
            st = self.state.get((s.station_id, s.evse_id))
            if st is not None and st.tx_id is not None and s.current_a is not None:
                st.measured_a = s.current_a
            return
        if isinstance(event, TransactionStarted):
            tx = event.transaction
            if tx.active and self.topology.evse(tx.station_id, tx.evse_id) is not None:
                st = self.state.setdefault((tx.station_id, tx.evse_id), _EvseState())
                st.tx_id, st.plugged_at, st.measured_a = tx.tx_id, self.clock(), None
                self.poke()
        elif isinstance(event, TransactionEnded):
            tx = event.transaction
            st = self.state.get((tx.station_id, tx.evse_id))
            if st is not None and st.tx_id == tx.tx_id:
                st.tx_id = st.plugged_at = st.measured_a = st.fixed_a = None
                st.sent = None
                self.poke()
        elif isinstance(event, StationConnected):
            for evse in self.topology.evses:
                if evse.station_id == event.station_id:
                    st = self.state.setdefault(evse.key, _EvseState())
                    st.connected = True
                    st.fixed_a = None
                    st.sent = None
            asyncio.get_running_loop().create_task(self.install_failsafe(event.station_id))
            self.poke()
        elif isinstance(event, StationDisconnected):
            for key, st in self.state.items():
                if key[0] == event.station_id:
                    st.connected = False
                    if st.tx_id is not None:  # it keeps charging at what it last accepted
                        st.fixed_a = st.sent[0] if st.sent else self._evse_max(key)
            self.poke()

    def poke(self) -> None:
        """Rebalance soon (coalesced), not on every message."""
        self._poke.set()

    # --- operator controls --------------------------------------------------------------
    def set_limit(self, node_id: str, limit_a: float | None) -> None:
        """Replace one node's limit (raises TopologyError/KeyError); effective next tick."""
        self.topology = self.topology.with_limit(node_id, limit_a)
        self._failsafe = self._failsafe_shares(self.topology)
        self.poke()

    def meter_reading(
        self, node_id: str, current_a: float | tuple[float, float, float], *, age_s: float = 0.0
    ) -> None:
        """A measured non-EV load of ``node_id``, taken ``age_s`` ago: it becomes the node's base
        load, and from now on the node's meter is watched (see ``check_meters``). A reading older
        than the last one is ignored; one older than ``meter_max_age_s`` is not trusted."""
        updated = self.topology.with_base_load(node_id, current_a)  # KeyError / TopologyError: bad node
        taken = self.clock() - max(0.0, age_s)
        if taken < self._meter_seen.get(node_id, -math.inf):
            return
        self._meter_seen[node_id] = taken
        if self._is_silent(node_id):  # too old: ``check_meters`` keeps (or makes) the node full
            if node_id not in self._too_old_logged:
                self._too_old_logged.add(node_id)
                log.warning("feeder meter reading too old, not used (is the meter's clock right?)",
                            node_id=node_id, age_s=round(age_s, 1), max_age_s=self.meter_max_age_s)
            return
        self._too_old_logged.discard(node_id)
        self.topology = updated
        if node_id in self.stale_meters:
            self.stale_meters.discard(node_id)
            log.info("feeder meter reporting again", node_id=node_id)
        self.poke()

    def check_meters(self) -> list[str]:
        """Treat every node whose meter has been silent for more than ``meter_max_age_s`` as
        full until it reports again: its base load is kept equal to its limit, whatever that is
        now (limits change at run time), so nothing is assigned under it. A stale reading may
        hide a load that grew. Returns the nodes that went stale now."""
        newly: list[str] = []
        for node_id in self._meter_seen:
            if node_id not in self.stale_meters and self._is_silent(node_id):
                self.stale_meters.add(node_id)
                newly.append(node_id)
                log.warning("feeder meter silent: nothing is assigned under the node until it reports",
                            node_id=node_id, silent_s=round(self.clock() - self._meter_seen[node_id], 1))
        for node_id in self.stale_meters:
            limit = self.topology.limit_a(node_id)  # per phase, kW limits converted; None: unlimited
            if limit is not None and self.topology.node(node_id).base_load_a != (limit,) * 3:
                self.topology = self.topology.with_base_load(node_id, limit)
        return newly

    def _is_silent(self, node_id: str) -> bool:
        seen = self._meter_seen.get(node_id)
        return bool(self.meter_max_age_s) and seen is not None and self.clock() - seen > self.meter_max_age_s

    # --- the loop -------------------------------------------------------------------------
    async def run(self, *, elected: Elected = always) -> None:
        """Rebalance every ``tick_s`` (sooner when poked) while ``elected()``."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self.tick_s)
            self._poke.clear()
            if not elected():
                continue
            try:
                await self.rebalance()
            except Exception:
                log.exception("rebalance failed")
            await asyncio.sleep(0.2)  # coalesce bursts of events

    def demands(self) -> list[Demand]:
        out = []
        for key, st in self.state.items():
            if st.tx_id is None and st.fixed_a is None:
                continue
            out.append(Demand(
                key[0], key[1], measured_a=st.measured_a, ev_max_a=self.ev_max_a(*key),
                plugged_at=st.plugged_at, fixed_a=st.fixed_a,
            ))
        return out

    async def rebalance(self) -> Allocation:
        async with self._lock:
            started = time.perf_counter()
            self.check_meters()
            alloc = allocate(
                self.topology, self.demands(), self.previous, now=self.clock(), settings=self.settings
            )
            self.previous = alloc
            self.ticks += 1
            await self._apply(alloc)
            self.last_duration_s = time.perf_counter() - started
            if self.on_allocation is not None:
                self.on_allocation(alloc)
            return alloc

    async def _apply(self, alloc: Allocation) -> None:
        now = self.clock()
        decreases: list[EvseAllocation] = []
        increases: list[EvseAllocation] = []
        for a in alloc.evses:
            st = self.state.get(a.key)
            if st is None or st.tx_id is None or not st.connected or a.reason == "fixed":
                continue
            target = (a.current_a, a.phases)
            if st.sent == target:
                continue
            if st.sent is not None and a.current_a >= st.sent[0]:
                if now - st.sent_at < self.min_interval_s:
                    continue  # increases are rate-limited per station; decreases never
                increases.append(a)
            elif st.sent is None:
                increases.append(a)
            else:
                decreases.append(a)
        if decreases:
            await asyncio.gather(*(self._send(a) for a in decreases))
        if increases:
            await asyncio.gather(*(self._send(a) for a in increases))

    async def _send(self, a: EvseAllocation) -> None:
        st = self.state[a.key]
        try:
            limit = ChargingLimit(
                amps=a.current_a, phases=a.phases, tx_id=st.tx_id, profile_id=TX_PROFILE_ID + a.evse_id,
                stack_level=1,
            )
            answer = await self.sender.set_limit(a.station_id, a.evse_id, limit)
            accepted = answer.status is CommandStatus.ACCEPTED
        except CsmsError as exc:
            log.warning(
                "charging profile not applied", station_id=a.station_id, evse_id=a.evse_id, error=str(exc)
            )
            accepted = False
        if accepted:
            self.sent_count += 1
            st.sent, st.sent_at, st.fixed_a = (a.current_a, a.phases), self.clock(), None
        else:
            self.failed_count += 1
            st.fixed_a = self._evse_max(a.key)  # assume the worst: it draws its maximum
            st.sent = None
            self.poke()

    async def install_failsafe(self, station_id: str) -> None:
        """TxDefaultProfile per EVSE at the fail-safe share (see module doc)."""
        for evse in self.topology.evses:
            if evse.station_id != station_id:
                continue
            share = self._failsafe.get(evse.key, 0.0)
            try:
                limit = ChargingLimit(amps=share, profile_id=DEFAULT_PROFILE_ID + evse.evse_id, stack_level=0)
                await self.sender.set_limit(station_id, evse.evse_id, limit)
            except CsmsError as exc:
                log.info("fail-safe profile not installed", station_id=station_id, error=str(exc))

    def _evse_max(self, key: EvseKey) -> float:
        evse = self.topology.evse(*key)
        return evse.max_a if evse is not None else 0.0

    def _failsafe_shares(self, topology: Topology) -> dict[EvseKey, float]:
        everyone = [Demand(e.station_id, e.evse_id) for e in topology.evses]
        alloc = allocate(topology, everyone, None, now=0.0, settings=self.settings)
        return {a.key: a.current_a for a in alloc.evses}

    # --- views ------------------------------------------------------------------------------
    def profiles_sent(self, station_id: str) -> list[tuple[int, int, str, float, int]]:
        """``(profile_id, evse_id, tx_id, limit_a, phases)`` of each TxProfile the station accepted
        for its running transactions."""
        return [
            (TX_PROFILE_ID + evse_id, evse_id, st.tx_id, st.sent[0], st.sent[1])
            for (sid, evse_id), st in self.state.items()
            if sid == station_id and st.sent is not None and st.tx_id is not None
        ]

    def stats(self) -> BalancerStats:
        return BalancerStats(self.ticks, self.sent_count, self.failed_count, self.last_duration_s)

    def feeder_loads(self) -> list[FeederLoad]:
        """Every node's load after the last tick, parents first, with its own chargers."""
        topology = self.topology
        ix = topology.compiled
        alloc = self.previous if self.previous is not None and self.previous.topology is topology else None
        out: list[FeederLoad] = []
        for i, node in enumerate(ix.nodes):
            load = alloc.nodes[i] if alloc is not None else None
            avail = topology.available_a(node.id)
            chargers = []
            first, end = ix.own_evses[i]
            for j in range(first, end):
                evse = ix.evses[j]
                st = self.state.get(evse.key)
                a = alloc.evses[j] if alloc is not None else None
                chargers.append(
                    ChargerLoad(
                        station_id=evse.station_id,
                        evse_id=evse.evse_id,
                        allocated_a=a.current_a if a else 0.0,
                        reason=a.reason if a else "idle",
                        measured_a=max(st.measured_a) if st and st.measured_a else 0.0,
                        charging=bool(st and st.tx_id),
                    )
                )
            out.append(
                FeederLoad(
                    node_id=node.id,
                    parent_id=node.parent,
                    limit_a=ix.limit_a[i],
                    available_a=_finite_max(avail),
                    measured_a=max(load.measured_a) if load else 0.0,
                    allocated_a=max(load.allocated_a) if load else 0.0,
                    headroom_a=_finite_min(load.headroom_a) if load else _finite_min(avail),
                    meter_stale=node.id in self.stale_meters,
                    chargers=tuple(chargers),
                )
            )
        return out

    def feeders_view(self, *, rounded: bool = False) -> list[dict[str, Any]]:
        """The tree as ``GET /api/feeders`` shows it: :meth:`feeder_loads` as JSON objects,
        ``rounded`` to 0.01 A for display."""
        return [feeder_json(load, rounded=rounded) for load in self.feeder_loads()]


def feeder_json(load: FeederLoad, *, rounded: bool = False) -> dict[str, Any]:
    """One node as a JSON object (the allocations are not rounded: they are what was sent)."""
    r = display_a if rounded else _same
    return {
        "id": load.node_id,
        "parent_id": load.parent_id,
        "limit_a": load.limit_a,
        "available_a": r(load.available_a),
        "measured_a": r(load.measured_a),
        "allocated_a": r(load.allocated_a),
        "headroom_a": r(load.headroom_a),
        "meter_stale": load.meter_stale,
        "chargers": [
            {
                "station_id": c.station_id,
                "evse_id": c.evse_id,
                "allocated_a": c.allocated_a,
                "reason": c.reason,
                "measured_a": r(c.measured_a),
                "charging": c.charging,
            }
            for c in load.chargers
        ],
    }


def _unknown(_station_id: str, _evse_id: int) -> None:
    return None


def _same(value: float | None) -> float | None:
    return value


def _finite_max(values: tuple[float, ...]) -> float | None:
    finite = [v for v in values if v != float("inf")]
    return max(finite) if finite else None


def _finite_min(values: tuple[float, ...]) -> float | None:
    finite = [v for v in values if v != float("inf")]
    return min(finite) if finite else None
