"""A virtual charging station: one WebSocket, its EVSEs, their EVs and its faults.

Tasks of one charger:

- ``run``: the connection loop. Connect (randomised exponential back-off on failure),
  then run a reader (:class:`~simulators.link.Link`) and a *sender* until the socket
  closes or a fault/reset/stop interrupts it.
- the sender: boots (honours Pending/Rejected and the interval), announces connector
  statuses, then sends the outbox in order and heartbeats when idle. It is the only
  task that sends CALLs, so there is one outstanding CALL at most.
- one task per EVSE: cars arrive (:mod:`simulators.arrivals`), authorize, start,
  charge under the limit of the installed profiles (:mod:`simulators.ev`,
  :mod:`simulators.profiles`), send meter values, stop and leave.
- optionally a fault task (:class:`~simulators.model.FaultConfig`).

Everything the EVSE tasks want to send goes through the outbox. While offline,
transaction messages stay queued (with their original timestamps, 2.0.1 ``offline``
flag set) and the rest is dropped; after reconnecting the queue is sent in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidURI
from websockets.typing import Subprotocol

from ocppj.versions import OcppVersion
from simulators import metering
from simulators.arrivals import ArrivalConfig, dwell_s, first_arrival_wall_s, next_arrival_s, session_ev
from simulators.clock import SimClock, Sleeper
from simulators.dialect import Dialect
from simulators.ev import EVState
from simulators.failures import classify
from simulators.firmware import FirmwareUpdater
from simulators.ledger import Ledger
from simulators.link import CallFailed, Link, LinkClosed, Served
from simulators.local_list import LocalList, authorize_offline
from simulators.logs_upload import LogUploader
from simulators.metrics import Recorder
from simulators.model import (
    Behaviour,
    ChargerSpec,
    EvseState,
    Sample,
    Settings,
    Status,
    StopReason,
    Tx,
)
from simulators.outbox import Outbox, Outgoing
from simulators.profiles import ChargingProfile, CompositeSchedule, ProfileSet, RateUnit
from simulators.reservations import ReservationBook
from simulators.security import Endpoints
from simulators.v16 import V16
from simulators.v201 import V201

log = structlog.get_logger("simulators")

DEFAULT_HEARTBEAT_S = 300.0
ZOMBIE_CHECK_S = 5.0  # how long an abandoned socket stays open for the CSMS to close it
FAULTS = ("drop", "offline", "duplicate", "connector")
_DIALECTS: dict[OcppVersion, Dialect] = {OcppVersion.V16: V16(), OcppVersion.V201: V201()}


@dataclass(frozen=True, slots=True)
class _RemoteStart:
    id_tag: str
    remote_start_id: int | None
    profile: ChargingProfile | None
    local: bool = False  # a driver at the EVSE (authorized first), not a remote start


class VirtualCharger:
    """One simulated station; implements :class:`~simulators.model.ChargerOps` for its dialect."""

    def __init__(
        self, spec: ChargerSpec, *, url: str, clock: SimClock, recorder: Recorder,
        behaviour: Behaviour | None = None, arrivals: ArrivalConfig | None = None,
        id_tags: Sequence[str] = ("SIMTAG",), endpoints: Endpoints | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        """``arrivals`` None: no cars arrive by themselves (only remote starts). ``endpoints``:
        the CSMS URLs to try in turn and the credentials (default: ``url``, no security).
        ``ledger``: where acknowledged transaction messages are written down."""
        self.spec = spec
        self.endpoints = endpoints or Endpoints((url,))
        self._url_index = 0
        self._urls_tried = 0  # failed attempts since the last connection, to try each URL once
        self.url = self._station_url()
        self.clock = clock
        self.recorder = recorder
        self.behaviour = behaviour or Behaviour()
        self.arrivals = arrivals
        self.id_tags = tuple(id_tags)
        self.dialect = _DIALECTS[spec.version]
        self.rng = random.Random(spec.seed)
        self.profiles = ProfileSet()
        self.uploads = LogUploader(fail_share=self.behaviour.faults.upload_failure_share, seed=spec.seed)
        self.local_list = LocalList()
        self.reservations = ReservationBook()
        self.settings = Settings(
            heartbeat_interval_s=spec.heartbeat_interval_s or DEFAULT_HEARTBEAT_S,
            meter_interval_s=spec.meter_interval_s,
            extra=dict(spec.configuration),
        )
        self.evses = {
            i: EvseState(i, e, e.supply(), register_wh=round(self.rng.uniform(1e5, 5e6)))
            for i, e in enumerate(spec.evses, start=1)
        }
        self.link: Link | None = None
        self._accepted = False
        self._boot_reason = "PowerUp"
        self._boot_wake = Sleeper()
        self._outbox = Outbox(
            attempts=self.behaviour.transaction_message_attempts,
            acknowledged=functools.partial(ledger.record, spec.station_id) if ledger is not None else None,
        )
        self._evse_wake = {i: Sleeper() for i in self.evses}
        self._remote: dict[int, _RemoteStart] = {}
        self._interrupt: asyncio.Future[str] | None = None
        self._pause_wake = Sleeper()
        self._stopping = False
        self._reboot = False
        self._reset_when_idle = False
        self._offline_until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._sessions = 0
        self._tx_counter = 0
        self._evse_started = False
        self._zombies: set[ClientConnection] = set()
        self.firmware = FirmwareUpdater(self, self.behaviour.firmware, spec.firmware_faults)
        self._firmware_reboot = False

    # --- lifecycle --------------------------------------------------------------------
    @property
    def online(self) -> bool:
        return self.link is not None

    @property
    def accepted(self) -> bool:
        return self._accepted

    async def run(self) -> None:
        """Connect, reconnect and serve until :meth:`stop` (then return)."""
        if self.behaviour.faults.total_per_hour > 0:
            self._spawn(self._fault_loop(), "faults")
        try:
            await self._connection_loop()
        finally:
            unsent = self._outbox.transactional()
            if unsent:  # stopped while offline (or past the grace time): these never reached the CSMS
                self.recorder.count("messages_unsent_at_end", unsent)
            await self.uploads.aclose()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for ws in self._zombies:
                ws.transport.abort()

    def stop(self) -> None:
        """Begin a graceful stop: end sessions, send what is queued (reconnecting at once
        if offline), close. Non-blocking; ``run`` returns when done."""
        self._stopping = True
        self._offline_until = 0.0
        self.firmware.cancel()
        if self.behaviour.end_transactions_on_stop:
            for evse in self.evses.values():
                if evse.tx is not None and evse.stop_request is None:
                    evse.stop_request = StopReason.LOCAL
        self._wake_all()

    def _finished(self) -> bool:
        """Stopping, with no session to end and no transaction message left to send."""
        if not self._stopping:
            return False
        sessions = self._sessions if self.behaviour.end_transactions_on_stop else 0
        return not sessions and not self._outbox.transactional()

    def _wake_all(self) -> None:
        for sleeper in self._evse_wake.values():
            sleeper.wake()
        self._outbox.wake.wake()
        self._boot_wake.wake()
        self._pause_wake.wake()

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=f"{self.spec.station_id}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.recorder.error("simulator_bug:task")
            log.error("charger task failed", task=task.get_name(), exc_info=task.exception())

    def _interrupt_with(self, reason: str) -> None:
        if self._interrupt is not None and not self._interrupt.done():
            self._interrupt.set_result(reason)

    async def _connection_loop(self) -> None:
        attempt = 0
        while not self._finished():
            wait = self._offline_until - time.monotonic()
            if wait > 0 and not self._stopping:
                await self._pause_wake.sleep(wait)
                continue
            ws = await self._connect()
            if ws is None:
                attempt += 1
                if self._next_url():
                    continue
                await self._pause_wake.sleep(self._backoff(attempt))
                continue
            attempt = 0
            reason = await self._online(ws)
            if reason in ("stop", "duplicate"):
                continue
            self.recorder.count("reconnects")
            if reason == "reset":
                await self._pause_wake.sleep(self.rng.uniform(1.0, 3.0))
            elif reason != "offline":
                await self._pause_wake.sleep(self._backoff(0))

    def _backoff(self, attempt: int) -> float:
        """Randomised exponential back-off: up to base * 2^attempt, at least half of it."""
        b = self.behaviour
        ceiling = min(b.reconnect_max_s, b.reconnect_base_s * 2 ** min(attempt, 16))
        return self.rng.uniform(ceiling / 2, ceiling)

    def _station_url(self) -> str:
        return f"{self.endpoints.urls[self._url_index]}/{quote(self.spec.station_id, safe='')}"

    def _next_url(self) -> bool:
        """After a failure, switch to the next CSMS URL; False when each was tried since the
        last connection (time to back off)."""
        self._urls_tried += 1
        self._url_index = (self._url_index + 1) % len(self.endpoints.urls)
        self.url = self._station_url()
        return self._urls_tried < len(self.endpoints.urls)

    async def _connect(self) -> ClientConnection | None:
        self.recorder.count("connections_requested")
        b = self.behaviour
        sid = self.spec.station_id
        try:
            ws = await connect(
                self.url, subprotocols=[Subprotocol(self.spec.version.value)],
                open_timeout=b.open_timeout_s, ping_interval=b.ws_ping_interval_s or None,
                ping_timeout=b.ws_ping_interval_s or None, close_timeout=2, compression=None,
                max_size=1 << 20, max_queue=64, user_agent_header=f"csms-sim/{self.spec.model}", proxy=None,
                ssl=self.endpoints.ssl_for(sid, self.url), additional_headers=self.endpoints.headers(sid),
            )
        except (InvalidHandshake, InvalidURI, OSError, TimeoutError) as exc:
            kind = classify(exc, tls=self.url.startswith("wss:"))
            urls = self.endpoints.urls
            self._connect_failed(f"{kind}@{urls[self._url_index]}" if len(urls) > 1 else kind)
            return None
        self._urls_tried = 0
        if self.endpoints.connected(ws.transport.get_extra_info("ssl_object")):
            self.recorder.count("tls_resumed")
        if ws.subprotocol != self.spec.version.value:
            self.recorder.error(f"subprotocol:{ws.subprotocol}")
            ws.transport.abort()
            return None
        return ws

    def _connect_failed(self, kind: str) -> None:
        self.recorder.connect_failures[kind] += 1

    async def _online(self, ws: ClientConnection) -> str:
        """Serve one connection; returns why it ended."""
        link = Link(ws, self.spec.version, self._serve, self.recorder,
                    call_timeout_s=self.behaviour.call_timeout_s)
        interrupt: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._interrupt = interrupt
        self.link = link
        self.recorder.connection_up()
        reader = asyncio.create_task(link.serve_forever())
        sender = asyncio.create_task(self._sender(link))
        waiting: set[asyncio.Future[Any]] = {reader, sender, interrupt}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.link = None
            self.recorder.connection_down()
        if interrupt.done():
            reason = interrupt.result()
        elif sender.done() and not sender.cancelled() and sender.exception() is None:
            reason = sender.result()
        else:
            reason = "closed"
        interrupt.cancel()
        sender.cancel()
        self._outbox.drop_stale()
        if reason == "duplicate":
            self._keep_zombie(ws)
        elif reason in ("drop", "offline"):
            ws.transport.abort()
        elif reason in ("stop", "reset"):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(1000), 3)
        else:
            self.recorder.count("connections_lost")
        reader.cancel()
        for result in await asyncio.gather(reader, sender, return_exceptions=True):
            if isinstance(result, Exception) and not isinstance(result, LinkClosed | CallFailed):
                self.recorder.error("simulator_bug:connection")
                log.error("connection task failed", station_id=self.spec.station_id, exc_info=result)
        if reason == "offline":
            b = self.behaviour.faults
            self._offline_until = time.monotonic() + self.rng.uniform(b.offline_min_s, b.offline_max_s)
        if reason == "reset":
            self._accepted = False
            self._boot_reason = "FirmwareUpdate" if self._firmware_reboot else "RemoteReset"
            self._reboot = self._firmware_reboot = False
        return reason

    def _keep_zombie(self, ws: ClientConnection) -> None:
        """Leave the old socket open and unread; see whether the CSMS closes it."""
        self.recorder.count("duplicate_connections")
        self._zombies.add(ws)

        def check() -> None:
            closed = ws.close_code is not None
            self.recorder.count("old_connections_closed_by_csms" if closed else "old_connections_left_open")
            ws.transport.abort()
            self._zombies.discard(ws)

        asyncio.get_running_loop().call_later(ZOMBIE_CHECK_S, check)

    # --- sender -----------------------------------------------------------------------
    async def _sender(self, link: Link) -> str:
        """Boot if needed, then send the outbox in order; heartbeat when idle."""
        must_boot = not self._accepted or self.behaviour.boot_on_reconnect
        if must_boot and not await self._boot(link):
            return "stop"
        for evse in self.evses.values():
            evse.sent_status = None
            self.send_status(evse)
        while True:
            if self._finished() and not self._outbox:
                return "stop"
            if self._reboot and not self._sessions and not self._outbox:
                return "reset"
            if not self._outbox:
                due = link.last_call_at + self.settings.heartbeat_interval_s - time.monotonic()
                if due > 0:
                    await self._outbox.wake.sleep(due)
                    continue
                self.send_heartbeat()
            await self._outbox.send_next(link)

    async def _boot(self, link: Link) -> bool:
        """BootNotification until Accepted; False if the charger finished stopping meanwhile."""
        while not self._finished():
            try:
                response = await link.call("BootNotification", self.dialect.boot(self, self._boot_reason))
            except CallFailed:
                await self._boot_wake.sleep(self._backoff(3))
                continue
            status, interval = self.dialect.boot_result(response)
            if status == "Accepted":
                self._on_boot_accepted(interval)
                return True
            self.recorder.count("boots_pending" if status == "Pending" else "boots_rejected")
            await self._boot_wake.sleep(interval if interval > 0 else 30.0)
        return False

    def _on_boot_accepted(self, interval: int) -> None:
        self.recorder.count("boots_accepted")
        if not self.spec.heartbeat_interval_s and interval > 0:
            self.settings.heartbeat_interval_s = interval
        self._accepted = True
        if not self._evse_started:
            self._evse_started = True
            for evse in self.evses.values():
                self._spawn(self._evse_loop(evse), f"evse{evse.id}")

    # --- outbox (ChargerOps) ----------------------------------------------------------
    def enqueue(
        self, action: str, build: Callable[[], dict[str, Any]], *, transactional: bool = False,
        on_answer: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._put(Outgoing(action, build, transactional, on_answer))

    def _put(self, entry: Outgoing, *, front: bool = False) -> None:
        if self._outbox.put(entry, online=self.link is not None, front=front) and self.link is None:
            self.recorder.count("offline_messages")

    async def _request(self, action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Send a non-transaction message and wait for its answer; None when offline or failed."""
        if self.link is None:
            return None
        waiter: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._put(Outgoing(action, lambda: payload, waiter=waiter))
        return await waiter

    def send_boot(self) -> None:
        if not self._accepted:
            self._boot_wake.wake()
            return

        def on_answer(response: dict[str, Any]) -> None:
            status, interval = self.dialect.boot_result(response)
            if status == "Accepted" and not self.spec.heartbeat_interval_s and interval > 0:
                self.settings.heartbeat_interval_s = interval

        payload = self.dialect.boot(self, "Triggered")
        self._put(Outgoing("BootNotification", lambda: payload, on_answer=on_answer), front=True)

    def send_heartbeat(self) -> None:
        self.enqueue("Heartbeat", dict)

    def send_status(self, evse: EvseState) -> None:
        if self.link is None:
            return
        for payload in self.dialect.status(self, evse):
            self.enqueue("StatusNotification", functools.partial(dict, payload))

    def send_meter(self, evse: EvseState, *, transaction_event: bool = True) -> None:
        self._settle(evse)
        sample = self.sample(evse)
        if evse.tx is not None and transaction_event:
            action, build = self.dialect.tx_meter(evse, evse.tx, sample, offline=not self.online,
                                                  trigger="trigger")
            self.enqueue(action, build, transactional=True)
        else:
            payload = self.dialect.meter(evse, sample)
            self.enqueue("MeterValues", lambda: payload)

    def after(self, delay_s: float, fn: Callable[[], None]) -> None:
        asyncio.get_running_loop().call_later(delay_s, fn)

    def _serve(self, action: str, payload: dict[str, Any]) -> Served:
        return self.dialect.serve(self, action, payload)

    # --- EVSEs and sessions -----------------------------------------------------------
    def _set_status(self, evse: EvseState, status: Status) -> None:
        evse.status = status
        self.send_status(evse)

    def _idle_status(self, evse: EvseState) -> Status:
        if evse.faulted:
            return Status.FAULTED
        if self.reservations.holds(evse.id) is not None and evse.operative:
            return Status.RESERVED
        return Status.AVAILABLE if evse.operative else Status.UNAVAILABLE

    async def _evse_loop(self, evse: EvseState) -> None:
        """Cars come and go on one EVSE until the charger stops."""
        sleeper = self._evse_wake[evse.id]
        first = True
        while not self._stopping:
            remote = self._remote.pop(evse.id, None)
            if remote is None:
                delay = self._arrival_delay(first)
                first = False
                woke = await sleeper.sleep(min(delay, 86_400.0))
                if self._stopping:
                    break
                remote = self._remote.pop(evse.id, None)
                if woke and remote is None:
                    continue
            if not evse.free or not self._accepted or self._reboot:
                continue
            if remote is None and self.reservations.holds(evse.id) is not None:
                continue  # the fleet's drivers keep off a reserved EVSE
            self._sessions += 1
            try:
                await self._session(evse, remote)
            finally:
                self._sessions -= 1
                self._outbox.wake.wake()

    def _arrival_delay(self, first: bool) -> float:
        """Wall seconds until the next car (an hour, re-checked, when cars never come)."""
        cfg = self.arrivals
        if cfg is None:
            return 3600.0
        if first:
            early = first_arrival_wall_s(self.rng, cfg)
            if early is not None:
                return early
        return self.clock.real_s(next_arrival_s(self.rng, cfg, self.clock.now()))

    async def _session(self, evse: EvseState, remote: _RemoteStart | None) -> None:
        """One car: plug in, authorize, charge, stop, leave."""
        sleeper = self._evse_wake[evse.id]
        evse.ev = EVState.arrive(session_ev(self.rng, self.arrivals))
        evse.last_step_s = self.clock.elapsed_s()
        evse.stop_request = None
        self._set_status(evse, Status.PREPARING)
        cfg = self.arrivals or ArrivalConfig()
        departure_s = self.clock.elapsed_s() + dwell_s(self.rng, cfg)
        id_tag = remote.id_tag if remote is not None else self.rng.choice(self.id_tags)
        ask = remote is None or remote.local or self.settings.authorize_remote_start
        if ask and not await self._authorize(id_tag):
            self.recorder.count("authorizations_rejected")
            await sleeper.sleep(min(2.0, self.clock.real_s(60.0)))
            self._leave(evse)
            return
        tx = self._begin(evse, id_tag, remote)
        reason = await self._charge(evse, tx, departure_s)
        self._end(evse, tx, reason)
        if reason is not StopReason.EV_DISCONNECTED and not self._stopping:
            await sleeper.sleep(min(2.0, self.clock.real_s(60.0)))
        self._leave(evse)

    async def _authorize(self, id_tag: str) -> bool:
        response = await self._request("Authorize", self.dialect.authorize(id_tag))
        if response is None:
            return authorize_offline(self, id_tag, self.clock.stamp())
        return self.dialect.authorized(response)

    def _begin(self, evse: EvseState, id_tag: str, remote: _RemoteStart | None) -> Tx:
        self._tx_counter += 1
        if self.spec.version is OcppVersion.V201:
            local_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        else:
            local_id = f"{self.spec.station_id}-{self._tx_counter}"
        tx = Tx(local_id, evse.id, id_tag, self.clock.now(), evse.register_wh, self.clock.stamp(),
                remote_start_id=remote.remote_start_id if remote and not remote.local else None,
                reservation_id=self.reservations.consume(evse.id, id_tag))
        if self.behaviour.signed_meter_values:
            tx.sign = self._signer(tx)
        evse.tx = tx
        evse.last_step_s = self.clock.elapsed_s()
        if remote is not None and remote.profile is not None:
            with contextlib.suppress(ValueError):
                self.profiles.install(remote.profile, evse.id)
        sample = self.sample(evse)
        tx.charging_state = self._charging_state(evse, sample)
        action, build, on_answer = self.dialect.tx_started(self, evse, tx, sample, offline=not self.online)
        self._put(Outgoing(action, build, True, on_answer))
        self.recorder.count("transactions_started")
        self._set_status(evse, tx.charging_state)
        return tx

    def _signer(self, tx: Tx) -> Callable[[float, datetime, str], str]:
        """Signs the session's register readings as OCMF with the fixed test key."""
        from simulators import ocmf  # only when signing: cryptography costs memory in every worker

        pages = itertools.count(1)

        def sign(register_wh: float, ts: datetime, context: str) -> str:
            return ocmf.reading(
                gateway_id=self.spec.station_id, meter_serial=self.spec.serial_number,
                pagination=f"T{next(pages)}", tx_id=tx.local_id, id_tag=tx.id_tag, ts=ts,
                register_wh=register_wh, context=context,
            )

        return sign

    async def _charge(self, evse: EvseState, tx: Tx, departure_s: float) -> StopReason:
        """Charge until the driver leaves or something stops the transaction."""
        sleeper = self._evse_wake[evse.id]
        last_meter = time.monotonic()
        while True:
            if evse.stop_request is not None:
                return evse.stop_request
            if tx.deauthorized:
                return StopReason.DEAUTHORIZED
            left_s = departure_s - self.clock.elapsed_s()
            if left_s <= 0:
                return StopReason.LOCAL
            until_meter = last_meter + self.settings.meter_interval_s - time.monotonic()
            if until_meter > 0:
                await sleeper.sleep(min(until_meter, self.clock.real_s(left_s)))
                continue
            last_meter = time.monotonic()
            self._settle(evse)
            sample = self.sample(evse)
            self._update_state(evse, tx, sample)
            action, build = self.dialect.tx_meter(
                evse, tx, sample, offline=not self.online, trigger="periodic"
            )
            self._put(Outgoing(action, build, True))

    def _update_state(self, evse: EvseState, tx: Tx, sample: Sample) -> None:
        state = self._charging_state(evse, sample)
        if state is tx.charging_state:
            return
        tx.charging_state = state
        message = self.dialect.tx_state(evse, tx, sample, offline=not self.online)
        if message is not None:
            self._put(Outgoing(message[0], message[1], True))
        self._set_status(evse, state)

    def _charging_state(self, evse: EvseState, sample: Sample) -> Status:
        if evse.ev is not None and evse.ev.full:
            return Status.SUSPENDED_EV
        return Status.CHARGING if sample.power_w > 0 else Status.SUSPENDED_EVSE

    def _end(self, evse: EvseState, tx: Tx, reason: StopReason) -> None:
        self._settle(evse)
        sample = self.sample(evse)
        action, build = self.dialect.tx_ended(evse, tx, sample, reason, offline=not self.online)
        self._put(Outgoing(action, build, True))
        self.recorder.count("transactions_stopped")
        evse.tx = None
        evse.stop_request = None
        self.profiles.clear_transaction_profiles(evse.id)
        if reason is not StopReason.EV_DISCONNECTED:
            self._set_status(evse, Status.FINISHING)

    def _leave(self, evse: EvseState) -> None:
        evse.ev = None
        self._set_status(evse, self._idle_status(evse))
        if self._reset_when_idle and not any(e.tx for e in self.evses.values()):
            self._reset_when_idle = False
            self._start_reset(StopReason.SOFT_RESET)

    # --- meter ------------------------------------------------------------------------
    def _limit_a(self, evse: EvseState) -> float | None:
        tx_id = self.dialect.profile_tx_id(evse.tx) if evse.tx else None
        return metering.grid_limit_a(evse, self.profiles, self.clock.now(), tx_id)

    def _settle(self, evse: EvseState) -> None:
        """Advance the EV to now under the limit in effect since the last step."""
        self.recorder.energy_wh += metering.settle(evse, self.clock.elapsed_s(), self._limit_a(evse))

    def sample(self, evse: EvseState) -> Sample:
        """The meter now, under the limit in effect now."""
        return metering.sample(evse, self.clock.stamp(), self._limit_a(evse))

    # --- CSMS-initiated operations (ChargerOps) ---------------------------------------
    def remote_start(
        self, evse_id: int | None, id_tag: str, *, remote_start_id: int | None = None,
        profile: ChargingProfile | None = None,
    ) -> EvseState | None:
        candidates = [self.evses[evse_id]] if evse_id is not None else list(self.evses.values())
        for evse in candidates:
            if evse.free and evse.id not in self._remote and self._accepted and not self._stopping:
                if not self.reservations.admits(evse.id, id_tag):
                    continue
                self._remote[evse.id] = _RemoteStart(id_tag, remote_start_id, profile)
                self._evse_wake[evse.id].wake()
                return evse
        return None

    def present(self, evse_id: int, id_tag: str) -> bool:
        """A driver presents ``id_tag`` at the EVSE: False when it is busy or reserved for another
        tag (refused at the EVSE, nothing sent); else the charger authorizes it and starts."""
        evse = self.evses[evse_id]
        if not self.reservations.admits(evse_id, id_tag):
            self.reservations.refused_locally += 1
            return False
        if not evse.free or evse.id in self._remote or not self._accepted or self._stopping:
            return False
        self._remote[evse_id] = _RemoteStart(id_tag, None, None, local=True)
        self._evse_wake[evse_id].wake()
        return True

    def remote_stop(self, tx_id: str) -> bool:
        for evse in self.evses.values():
            if evse.tx is not None and evse.tx.local_id == tx_id:
                evse.stop_request = evse.stop_request or StopReason.REMOTE
                self._evse_wake[evse.id].wake()
                return True
        return False

    def reset(self, *, hard: bool, when_idle: bool) -> bool:
        self.recorder.count("resets")
        if when_idle and any(e.tx for e in self.evses.values()):
            self._reset_when_idle = True
            return False
        self.after(0.0, lambda: self._start_reset(StopReason.HARD_RESET if hard else StopReason.SOFT_RESET))
        return True

    def install_firmware(self, version: str) -> None:
        self.spec = replace(self.spec, firmware_version=version)
        self._firmware_reboot = True
        self.after(0.0, lambda: self._start_reset(StopReason.OTHER))

    def _start_reset(self, reason: StopReason) -> None:
        self._reboot = True
        for evse in self.evses.values():
            if evse.tx is not None and evse.stop_request is None:
                evse.stop_request = reason
        self._wake_all()

    def unlock(self, evse_id: int) -> bool:
        evse = self.evses[evse_id]
        if evse.tx is not None:
            evse.stop_request = evse.stop_request or StopReason.UNLOCK
            self._evse_wake[evse_id].wake()
        return True

    def change_availability(self, evse_id: int, operative: bool) -> bool:
        now = True
        for evse in self.evses.values() if evse_id == 0 else [self.evses[evse_id]]:
            evse.operative = operative
            if evse.ev is None:
                self._set_status(evse, self._idle_status(evse))
            elif not operative:
                now = False
        return now

    def set_profile(self, evse_id: int, profile: ChargingProfile) -> None:
        for evse in self.evses.values():
            self._settle(evse)
        self.profiles.install(profile, evse_id)

    def clear_profiles(self, request: dict[str, Any]) -> bool:
        for evse in self.evses.values():
            self._settle(evse)
        return self.profiles.clear_request(request)

    def composite(self, evse_id: int, duration_s: int, unit: RateUnit | None) -> CompositeSchedule:
        evse = self.evses.get(evse_id) or self.evses[min(self.evses)]
        tx = evse.tx if evse_id else None
        return self.profiles.composite_schedule(
            self.clock.now(), duration_s, evse_id, self.dialect.profile_tx_id(tx) if tx else None,
            tx.started_at if tx else None, max_current_a=evse.spec.rated_current_a,
            phases=metering.grid_phases(evse), voltage_v=evse.spec.grid_voltage_v, unit=unit or RateUnit.A,
        )

    def unplug(self, evse_id: int) -> bool:
        """The driver ends the session now (EV disconnected); False if nothing was charging."""
        evse = self.evses[evse_id]
        if evse.tx is None:
            return False
        evse.stop_request = evse.stop_request or StopReason.EV_DISCONNECTED
        self._evse_wake[evse_id].wake()
        return True

    # --- faults -----------------------------------------------------------------------
    def inject(self, kind: str, evse_id: int | None = None) -> None:
        """Cause a fault now: ``drop``, ``offline``, ``duplicate`` (need a connection) or
        ``connector`` (EVSE ``evse_id``, default a random one)."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULTS)}")
        if kind == "connector":
            self._fault_connector(self.evses[evse_id or self.rng.choice(list(self.evses))])
        elif self.link is not None:
            self._interrupt_with(kind)

    async def _fault_loop(self) -> None:
        f = self.behaviour.faults
        weights = [f.drop_per_hour, f.offline_per_hour, f.duplicate_per_hour, f.connector_fault_per_hour]
        while not self._stopping:
            await asyncio.sleep(self.rng.expovariate(f.total_per_hour / 3600.0))
            if not self._stopping:
                self.inject(self.rng.choices(FAULTS, weights)[0])

    def _fault_connector(self, evse: EvseState) -> None:
        if evse.faulted:
            return
        self.recorder.count("connector_faults")
        evse.faulted = True
        if evse.tx is not None:
            evse.stop_request = evse.stop_request or StopReason.OTHER
            self._evse_wake[evse.id].wake()
        else:
            self._set_status(evse, Status.FAULTED)
        f = self.behaviour.faults

        def repair() -> None:
            evse.faulted = False
            if evse.ev is None:
                self._set_status(evse, self._idle_status(evse))

        self.after(self.rng.uniform(f.connector_fault_min_s, f.connector_fault_max_s), repair)
