"""What the console's live channel is made of: station views, the message ring, the hub.

``ConsoleHub`` turns bus events into *dirty marks* per connected browser; each
browser's writer wakes up, sleeps ``flush_interval_s`` to let more marks pile up,
and sends one frame with the current view of every dirty station. However many
MeterValues arrive, a browser gets at most ``1 / flush_interval_s`` frames a
second, and a frame never holds more than one view per station.

``MessageLog`` keeps the last OCPP messages of each station (bounded in count,
payload size and number of stations) for the station page.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from csms.api.context import ApiContext
from csms.api.views import charger_view, transaction_view
from csms.core.events import Event, FeederLoadChanged
from csms.core.service import LiveStation
from csms.ocpp.registry import FrameTap
from csms.security.lifecycle import redact
from csms.telemetry.outputs import EVENTS, ConsoleUpdate, console_events

BUSY = frozenset({"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Occupied"})
"""Connector statuses (1.6 and 2.0.1) that mean a vehicle is plugged in."""

STATES = ("faulted", "offline", "charging", "occupied", "unavailable", "available", "unknown")
"""Station states the console shows, most urgent first."""


def evse_busy(evse: dict[str, Any]) -> bool:
    """True when a connector of ``evse`` (a ``charger_view`` EVSE) has a vehicle plugged in."""
    return any(c["status"] in BUSY for c in evse["connectors"])


def station_state(view: dict[str, Any]) -> str:
    """One word for a ``charger_view``: the station's most urgent condition."""
    if not view["connected"]:
        return "offline"
    statuses = [c["status"] for e in view["evses"] for c in e["connectors"]]
    if view["status"] == "Faulted" or "Faulted" in statuses:
        return "faulted"
    if "Charging" in statuses or any(evse_busy(e) and (e.get("power_w") or 0) > 0 for e in view["evses"]):
        return "charging"
    if any(s in BUSY or s == "Reserved" for s in statuses):
        return "occupied"
    if view["status"] == "Unavailable" or (statuses and all(s == "Unavailable" for s in statuses)):
        return "unavailable"
    return "available" if statuses else "unknown"


def station_power_w(view: dict[str, Any]) -> float:
    """Power drawn now: the last reading of EVSEs with a vehicle plugged in (0 when offline).

    The core keeps the last sample after a session ends, so an idle EVSE's reading is stale
    and is not counted.
    """
    if not view["connected"]:
        return 0.0
    return float(sum(e.get("power_w") or 0.0 for e in view["evses"] if evse_busy(e)))


def console_view(ctx: ApiContext, live: LiveStation) -> dict[str, Any]:
    """The API's charger view plus the console's derived ``state`` and ``power_w``."""
    view = charger_view(ctx, live)
    view["state"] = station_state(view)
    view["power_w"] = station_power_w(view)
    return view


Entry = tuple[float, str, str, str, str, bytes | str]
"""(unix time, direction, action, message type, message id, frame text as received or sent)"""

PASSWORD_ACTIONS = frozenset({"ChangeConfiguration", "SetVariables"})
"""Calls that may carry a station password (see ``csms.security.lifecycle.redact``)."""


class _Rendered(str):
    """Payload text rendered when the frame was kept (long frames, calls that may hold a secret)."""


def _payload_text(kind: str, action: str, raw: bytes | str) -> str:
    """The payload of an OCPP-J frame as JSON text (passwords redacted); the frame itself when unreadable."""
    if isinstance(raw, _Rendered):
        return raw
    try:
        frame = orjson.loads(raw)
        if kind == "Call":
            body = redact(action, frame[3])
        else:
            body = frame[2] if kind == "CallResult" else frame[2:4]
        return orjson.dumps(body).decode()
    except (orjson.JSONDecodeError, IndexError, TypeError, KeyError):
        return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


class MessageLog:
    """The last OCPP messages per station: ``per_station`` each, for at most ``max_stations``.

    Recording is on the hot path of every frame, so it keeps the frame text the session
    already has (a reference, no copy) with a timestamp; entries are parsed, redacted and
    cut at ``max_payload`` characters only when someone reads them (``recent``, ``render``).
    A frame longer than ``4 * max_payload`` (and a call that may carry a password) is
    rendered at once instead, so memory stays bounded at roughly
    ``max_stations * per_station * 4 * max_payload`` bytes (real frames are far smaller).
    """

    def __init__(self, *, per_station: int = 30, max_stations: int = 1000, max_payload: int = 1024) -> None:
        self.per_station = per_station
        self.max_stations = max_stations
        self.max_payload = max_payload
        self._max_raw = 4 * max_payload
        self._rings: OrderedDict[str, deque[Entry]] = OrderedDict()

    def add(
        self, station_id: str, direction: str, action: str, kind: str, unique_id: str, raw: bytes | str
    ) -> Entry:
        """Keep one frame (a ``csms.ocpp.registry.FrameTap``); returns the stored entry."""
        if len(raw) > self._max_raw or (kind == "Call" and action in PASSWORD_ACTIONS):
            raw = _Rendered(self._cut(_payload_text(kind, action, raw)))  # rare: render now
        elif direction == "out" and isinstance(raw, bytes):
            raw = raw.decode()  # orjson's bytes keep a 4 KiB buffer each; the text is its own size
        entry: Entry = (time.time(), direction, action, kind, unique_id, raw)
        ring = self._rings.get(station_id)
        if ring is None:
            ring = self._rings[station_id] = deque(maxlen=self.per_station)
            while len(self._rings) > self.max_stations:
                self._rings.popitem(last=False)
        else:
            self._rings.move_to_end(station_id)
        ring.append(entry)
        return entry

    def render(self, entry: Entry) -> dict[str, Any]:
        """An entry as the console shows it: the payload as JSON text, cut at ``max_payload``."""
        ts, direction, action, kind, unique_id, raw = entry
        text = self._cut(_payload_text(kind, action, raw))
        return {  # the timestamp stays a datetime: orjson formats it when a frame is sent
            "ts": datetime.fromtimestamp(ts, UTC), "direction": direction,
            "action": action, "type": kind, "id": unique_id, "payload": text,
        }

    def _cut(self, text: str) -> str:
        return text if len(text) <= self.max_payload else text[: self.max_payload] + "…"

    def recent(self, station_id: str) -> list[dict[str, Any]]:
        """The station's kept messages, oldest first."""
        return [self.render(e) for e in self._rings.get(station_id, ())]

    def __len__(self) -> int:
        return len(self._rings)


@dataclass(eq=False, slots=True)
class Client:
    """One browser's pending changes, drained by its writer."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dirty: set[str] = field(default_factory=set)
    summary_dirty: bool = False
    watch: str | None = None
    detail_dirty: bool = False
    messages: deque[Entry] = field(default_factory=lambda: deque(maxlen=100))
    resend_messages: bool = False
    feeders: bool = False
    feeder_nodes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def watch_station(self, station_id: str | None) -> None:
        """Follow ``station_id``'s detail (variables, sessions, messages); None to stop."""
        self.watch = station_id
        self.messages.clear()
        self.detail_dirty = self.resend_messages = station_id is not None
        self.wake.set()


_STATION_EVENTS = console_events(ConsoleUpdate.STATION, ConsoleUpdate.SESSIONS)
_FEEDER_EVENTS = console_events(ConsoleUpdate.FEEDER)


class ConsoleHub:
    """Fans bus events out to connected browsers as dirty marks; owns the message log."""

    def __init__(
        self, ctx: ApiContext, *, record_messages: bool = True, flush_interval_s: float = 0.25
    ) -> None:
        self.ctx = ctx
        self.flush_interval_s = flush_interval_s
        self.messages = MessageLog()
        self.clients: set[Client] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._unsubscribe_feeders: Callable[[], None] | None = None
        self._sessions_lock = asyncio.Lock()
        self._sessions_gen = 0  # bumped by every session start/end
        self._sessions_cache: tuple[int, int] | None = None  # (generation, count)
        self._record = record_messages
        self._tap: FrameTap | None = None
        self._retap()

    # --- clients ------------------------------------------------------------------------
    def add(self) -> Client:
        """Register a browser; the hub listens to station events while any is connected."""
        client = Client()
        self.clients.add(client)
        self._retap()
        if self._unsubscribe is None:
            self._sessions_cache = None  # sessions were not followed while nobody watched
            self._unsubscribe = self.ctx.bus.subscribe(self._on_event, *_STATION_EVENTS)
        return client

    def remove(self, client: Client) -> None:
        self.clients.discard(client)
        self._retap()
        if not self.clients and self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.follow_feeders(client, False)

    def follow_feeders(self, client: Client, on: bool) -> None:
        """Send ``client`` the balancer's node loads; the balancer publishes them only while followed."""
        client.feeders = on
        client.feeder_nodes.clear()
        wanted = any(c.feeders for c in self.clients)
        if wanted and self._unsubscribe_feeders is None:
            self._unsubscribe_feeders = self.ctx.bus.subscribe(self._on_feeder, *_FEEDER_EVENTS)
        elif not wanted and self._unsubscribe_feeders is not None:
            self._unsubscribe_feeders()
            self._unsubscribe_feeders = None

    # --- bus handlers (synchronous, cheap) ----------------------------------------------
    def _on_event(self, ev: Event) -> None:
        tx = EVENTS.get(type(ev)) is ConsoleUpdate.SESSIONS
        if tx:
            self._sessions_gen += 1
        for client in self.clients:
            client.dirty.add(ev.station_id)
            if tx:
                client.summary_dirty = True
            if client.watch == ev.station_id:
                client.detail_dirty = True
            client.wake.set()

    def _retap(self) -> None:
        """Tap frames straight into the log while no browser is connected (one call less per
        frame), through ``_on_frame`` while some are (it also feeds the watched stations)."""
        if not self._record:
            return
        taps = self.ctx.registry.taps
        wanted = self._on_frame if self.clients else self.messages.add
        if self._tap is not None and self._tap != wanted:
            taps.remove(self._tap)
            self._tap = None
        if self._tap is None:
            taps.append(wanted)
            self._tap = wanted

    def _on_frame(
        self, station_id: str, direction: str, action: str, kind: str, unique_id: str, raw: bytes | str
    ) -> None:
        entry = self.messages.add(station_id, direction, action, kind, unique_id, raw)
        for client in self.clients:
            if client.watch == station_id:
                client.messages.append(entry)
                client.detail_dirty = True  # e.g. NotifyReport changed the variables
                client.wake.set()

    def _on_feeder(self, ev: Event) -> None:
        if not isinstance(ev, FeederLoadChanged):
            return
        ev = ev.rounded()
        node = {
            "id": ev.node_id, "parent_id": ev.parent_id, "limit_a": ev.limit_a, "measured_a": ev.measured_a,
            "allocated_a": ev.allocated_a, "headroom_a": ev.headroom_a, "meter_stale": ev.meter_stale,
            "chargers": [{"station_id": s, "evse_id": e, "allocated_a": a} for s, e, a in ev.evses],
        }
        for client in self.clients:
            if client.feeders:
                client.feeder_nodes[ev.node_id] = node
                client.wake.set()

    # --- frames -------------------------------------------------------------------------
    def views(self, station_ids: Iterable[str]) -> list[dict[str, Any]]:
        live = self.ctx.service.live
        return [console_view(self.ctx, live[s]) for s in sorted(station_ids) if s in live]

    async def active_sessions(self) -> int:
        """Number of open transactions, re-read from the store after a session started or ended."""
        async with self._sessions_lock:
            cache = self._sessions_cache
            if cache is None or cache[0] != self._sessions_gen:
                gen = self._sessions_gen
                txs = await self.ctx.service.store.list_transactions(active=True, limit=100_000)
                cache = self._sessions_cache = (gen, len(txs))
            return cache[1]

    async def snapshot(self) -> dict[str, Any]:
        return {
            "type": "snapshot", "stations": self.views(self.ctx.service.live),
            "active_sessions": await self.active_sessions(),
        }

    async def detail(self, station_id: str) -> dict[str, Any]:
        """Variables and open sessions of one station (the station view itself travels separately)."""
        live = self.ctx.service.live.get(station_id)
        txs = await self.ctx.service.store.list_transactions(station_id=station_id, active=True, limit=50)
        return {
            "type": "detail", "station_id": station_id,
            "variables": dict(sorted(live.variables.items())) if live else {},
            "transactions": [transaction_view(self.ctx, tx) for tx in txs],
        }

    async def drain(self, client: Client) -> list[dict[str, Any]]:
        """The frames that bring ``client`` up to date; empty when nothing changed."""
        frames: list[dict[str, Any]] = []
        if client.dirty:
            dirty, client.dirty = client.dirty, set()
            gone = sorted(s for s in dirty if s not in self.ctx.service.live)
            frames.append({"type": "stations", "stations": self.views(dirty), "removed": gone})
        watch = client.watch
        if watch is not None and (client.resend_messages or client.messages):
            full = client.resend_messages
            client.resend_messages = False
            render = self.messages.render
            batch = self.messages.recent(watch) if full else [render(e) for e in client.messages]
            client.messages.clear()
            frames.append({"type": "messages", "station_id": watch, "replace": full, "messages": batch})
        if client.feeder_nodes:
            frames.append({"type": "feeders", "nodes": list(client.feeder_nodes.values())})
            client.feeder_nodes.clear()
        # awaits last: marks made meanwhile stay for the next round
        if client.summary_dirty:
            client.summary_dirty = False
            frames.append({"type": "summary", "active_sessions": await self.active_sessions()})
        if watch is not None and client.detail_dirty:
            client.detail_dirty = False
            frames.append(await self.detail(watch))
        return frames
