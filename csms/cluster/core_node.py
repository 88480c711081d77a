"""A core node on the broker (``csms serve --bus``): serves gateway nodes' stations, answers
other cores' calls for its stations, and keeps the cluster's presence.

- **Stations.** A gateway's ``OPEN`` reaches one core through a shared subscription; that core
  decides it (the same ``SessionHost.decide`` as every endpoint) and, once accepted, serves the
  station's session: every later frame of the station comes to this core's own topic, in order,
  so one core handles a station's calls one after another and answers each after its commit.
  Per gateway endpoint the core keeps a ``csms.gateway.core.StationLink``, exactly as for a
  gateway process on a Unix socket; a gateway that goes offline closes its stations' sessions.
- **Presence.** When a session starts the core claims the station in ``station_presence``
  (PostgreSQL) and announces it on ``where`` topics; every core keeps the announced map in
  memory, so any core knows which core and gateway serve any station. A station that connects
  again through another core is taken over: the older core closes its session (the newer
  connection wins, as on one node).
- **Calls between cores.** A command for a station served elsewhere goes to that core's ``rpc``
  topic with a response topic and correlation data; that core calls the station and answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import structlog

from csms import errors
from csms.cluster.broker import BrokerClient, BrokerUrl, Topics, new_endpoint, node_of, reply_properties
from csms.cluster.events import ClusterBus, EventRelay
from csms.cluster.relay import NodeDirectory, NodeInfo, TopicLink, split_frames
from csms.config import Settings
from csms.gateway.core import StationLink
from csms.gateway.link import Op
from csms.gateway.port import SessionHost
from csms.ocpp.control import OcppControl
from csms.ocpp.handshake import Admitted, Refused, Upgrade
from csms.ocpp.registry import SessionRegistry
from csms.ocpp.session import Connection
from csms.store.engine import Database
from csms.store.presence import SqlPresence
from ocppj.versions import OcppVersion

log = structlog.get_logger("csms.cluster")

_REMOTE_ERRORS: dict[str, type[errors.ControlError]] = {
    cls.__name__: cls for cls in (
        errors.StationNotConnected, errors.UnknownAction, errors.PayloadInvalid, errors.CallTimeout,
        errors.ResponseInvalid,
    )
}
_SESSION_LOST = orjson.dumps([1011, "CSMS session lost"])
GONE_LISTED_S = 600.0  # how long GET /api/cluster lists a node that went offline


@dataclass(frozen=True, slots=True)
class Location:
    """Where a connected station is served: core and gateway endpoints, and its OCPP version."""

    core: str
    gateway: str
    version: OcppVersion

    @property
    def core_node(self) -> str:
        return node_of(self.core)

    @property
    def gateway_node(self) -> str:
        return node_of(self.gateway)


@dataclass(slots=True, eq=False)
class Here:
    """One session this core serves (compared by identity: a newer session of the same station,
    even through the same gateway, is another ``Here``)."""

    gateway: str
    version: OcppVersion
    since: datetime | None = None  # its presence row's mark, once written
    claiming: bool = False  # its row is being written


class PresenceHost:
    """The OCPP server as one gateway's ``SessionHost``, recording presence around each session."""

    def __init__(self, inner: SessionHost, core: BrokerCore, gateway: str) -> None:
        self.inner = inner
        self.core = core
        self.gateway = gateway

    @property
    def stopping(self) -> bool:
        return self.inner.stopping

    async def decide(self, up: Upgrade) -> Admitted | Refused:
        return await self.inner.decide(up)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self.inner.spawn(coro)

    async def run_session(
        self, conn: Connection, station_id: str, version: OcppVersion, *, remote: str | None, tls: bool
    ) -> None:
        here = await self.core.arrived(station_id, self.gateway, version)
        try:
            await self.inner.run_session(conn, station_id, version, remote=remote, tls=tls)
        finally:
            await self.core.left(station_id, here)


class BrokerCore:
    """A core node's part of the cluster: gateway links, presence, calls between cores."""

    def __init__(
        self, host: SessionHost, url: BrokerUrl, *, node_id: str, topics: Topics, registry: SessionRegistry,
        presence: SqlPresence, call: Callable[..., Coroutine[Any, Any, dict[str, Any]]],
        qos: int = 1, keepalive_s: int = 5, max_inbox: int = 16, cluster_bus: ClusterBus | None = None,
    ) -> None:
        self.host = host
        self.cluster_bus = cluster_bus
        self.relay = EventRelay(lambda data: self._publish(self.topics.events(self.endpoint), data))
        self.endpoint = new_endpoint(node_id)
        self.topics = topics
        self.registry = registry
        self.presence = presence
        self._local_call = call  # OcppControl.call of this core's own sessions
        self.max_inbox = max_inbox
        self.closing = False
        self.links: dict[str, StationLink] = {}
        self.where: dict[str, Location] = {}  # every station any core announced
        self.local: dict[str, Here] = {}  # the sessions this core serves, by station
        self.directory = NodeDirectory(on_offline=self._offline)
        self._pending: dict[bytes, asyncio.Future[dict[str, Any]]] = {}
        self._pending_core: dict[bytes, str] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._where_out: list[list[Any]] = []
        self._where_scheduled = False
        t = topics
        self._p_open = t.open("")
        self._p_core = t.to_core(self.endpoint, "")
        self._p_node = t.node("")
        self._p_where = f"{t.prefix}/where/"
        self._p_events = t.events("")
        self._t_rpc, self._t_reply = t.rpc(self.endpoint), t.reply(self.endpoint)
        self.client = BrokerClient(
            url, endpoint=self.endpoint, role="core", topics=topics,
            subscriptions=[t.open_shared(), t.to_core(self.endpoint, "+"), t.nodes(), self._t_rpc,
                           self._t_reply, f"{t.prefix}/where/+", t.all_events()],
            on_message=self._on_message, on_up=self._up, on_down=self._down, qos=qos, keepalive_s=keepalive_s,
        )
        self._run: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()

    # --- life ---------------------------------------------------------------------------------
    async def start(self, *, wait_s: float = 10.0) -> None:
        """Connect (in the background, retried forever); wait up to ``wait_s`` for the first link."""
        with contextlib.suppress(Exception):
            await self.presence.drop_node_before(node_of(self.endpoint), self.endpoint)
        if self.cluster_bus is not None:
            self.cluster_bus.relay_to(self.relay.offer)
        self._run = asyncio.create_task(self.client.run(), name="broker")
        self._spawn(self._sweep_forever())
        try:
            await asyncio.wait_for(self.client.connected.wait(), wait_s)
        except TimeoutError:
            log.warning("broker not reachable yet; serving the API, stations come when it is",
                        broker=f"{self.client.url.host}:{self.client.url.port}")

    async def stop_accepting(self) -> None:
        """Leave the shared subscription of new stations (the broker gives them to the other cores)
        and refuse those already handed here (503)."""
        self.closing = True
        client = self.client._client_now()
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.unsubscribe(self.topics.open_shared()), 2.0)

    async def stop(self) -> None:
        self.closing = True
        for link in list(self.links.values()):
            for conn in list(link.conns.values()):
                with contextlib.suppress(Exception):
                    await conn.close(1001, "CSMS core shutting down")
            link.protocol.close()
        await asyncio.sleep(0.05)  # the close frames' publish (next loop iteration)
        await self.client.close()
        for task in [self._run, *self._tasks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*[t for t in [self._run, *self._tasks] if t is not None], return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.presence.drop_endpoint(self.endpoint)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _publish(self, topic: str, payload: bytes) -> bool:
        return self.client.publish(topic, payload)

    def _up(self) -> None:
        self._spawn(self._announce_all())

    def _down(self, exc: Exception | None) -> None:
        links, self.links = self.links, {}
        for link in links.values():
            link.protocol.closed = True
            link.on_lost(ConnectionError("broker connection lost"))
        self._fail_pending(None, "broker connection lost")
        self.where.clear()

    # --- messages -----------------------------------------------------------------------------
    def _on_message(self, topic: str, data: bytes, props: Any) -> None:
        if topic.startswith(self._p_core):
            self._frames(topic[len(self._p_core):], data)
        elif topic.startswith(self._p_open):
            self._frames(topic[len(self._p_open):], data)
        elif topic.startswith(self._p_where):
            self._where_in(topic[len(self._p_where):], data)
        elif topic.startswith(self._p_events):
            if self.cluster_bus is not None and topic[len(self._p_events):] != self.endpoint:
                for event in self.relay.receive(data):
                    self.cluster_bus.deliver(event)
        elif topic.startswith(self._p_node):
            self.directory.update(topic[len(self._p_node):], data)
        elif topic == self._t_rpc:
            response = getattr(props, "ResponseTopic", None)
            correlation = getattr(props, "CorrelationData", None)
            if response and correlation:
                self._spawn(self._answer(data, str(response), bytes(correlation)))
        elif topic == self._t_reply:
            correlation = bytes(getattr(props, "CorrelationData", b"") or b"")
            future = self._pending.pop(correlation, None)
            self._pending_core.pop(correlation, None)
            if future is not None and not future.done():
                future.set_result(orjson.loads(data))

    def _link(self, gateway: str) -> StationLink:
        link = self.links.get(gateway)
        if link is None:
            link = StationLink(PresenceHost(self.host, self, gateway), closing=lambda: self.closing,
                               max_inbox=self.max_inbox)
            link.protocol = TopicLink(self.topics.to_gateway(gateway, self.endpoint), self._publish)
            self.links[gateway] = link
        return link

    def _frames(self, gateway: str, data: bytes) -> None:
        if not self.client.connected.is_set():
            return
        link = self._link(gateway)
        for op, cid, body in split_frames(data):
            if op in (Op.MSG, Op.BINARY, Op.ALIVE) and cid not in link.conns and cid not in link.opening:
                link.protocol.send(Op.CLOSE, cid, _SESSION_LOST)  # a session this core no longer has
                continue
            link.on_frame(op, cid, body)

    def _offline(self, info: NodeInfo) -> None:
        if info.role == "gateway":
            link = self.links.pop(info.endpoint, None)
            if link is not None:
                link.protocol.closed = True
                link.on_lost(ConnectionError(f"gateway {info.node_id} offline"))
        elif info.role == "core":
            self._fail_pending(info.endpoint, f"core {info.node_id} offline")
            for station, loc in list(self.where.items()):
                if loc.core == info.endpoint:
                    del self.where[station]
        if info.endpoint != self.endpoint:
            self._spawn(self._drop(info.endpoint))
            # the API lists a gone node for a while; then its retained presence is cleared
            self._loop.call_later(GONE_LISTED_S, self._forget, info.endpoint)

    def _forget(self, endpoint: str) -> None:
        info = self.directory.nodes.get(endpoint)
        if info is not None and not info.online:
            self.client.publish(self.topics.node(endpoint), b"", qos=1, retain=True)

    async def _drop(self, endpoint: str) -> None:
        try:
            dropped = await self.presence.drop_endpoint(endpoint)
        except Exception as exc:
            log.warning("presence of a gone node not cleared", endpoint=endpoint, error=repr(exc))
            return
        if dropped:
            log.info("presence of a gone node cleared", endpoint=endpoint, stations=dropped)

    async def _sweep_forever(self, every_s: float = 30.0) -> None:
        """Clear presence rows of endpoints that are not online (a node that died while the broker
        was away, or whose will was lost with a broker restart)."""
        while True:
            await asyncio.sleep(every_s)
            if not self.client.connected.is_set():
                continue
            try:
                counts = await self.presence.counts()
            except Exception:
                continue
            gone = {ep for pair in counts for ep in pair
                    if ep != self.endpoint and not self.directory.online(ep)}
            for endpoint in gone:
                await self._drop(endpoint)
            try:
                await self.heal()
            except Exception as exc:
                log.warning("presence not healed", error=repr(exc))

    # --- presence -----------------------------------------------------------------------------
    async def arrived(self, station_id: str, gateway: str, version: OcppVersion) -> Here:
        here = self.local[station_id] = Here(gateway, version)
        self.where[station_id] = Location(self.endpoint, gateway, version)
        await self._claim(station_id, here)
        return here

    async def _claim(self, station_id: str, here: Here) -> None:
        here.claiming = True
        try:
            here.since, old = await self.presence.claim(station_id, self.endpoint, here.gateway,
                                                        here.version.value)
        except Exception as exc:  # presence is for routing: the session goes on (healed by the sweep)
            log.warning("presence not recorded", station=station_id, error=repr(exc))
            return
        finally:
            here.claiming = False
        if self.local.get(station_id) is here:  # announced once recorded: the claim decides who wins
            self._announce([station_id, here.gateway, here.version.value])
        if old is not None and old.core != self.endpoint and self.directory.online(old.core):
            self._spawn(self._evict_at(old.core, station_id))

    async def left(self, station_id: str, here: Here) -> None:
        if self.local.get(station_id) is here:
            del self.local[station_id]
            loc = self.where.get(station_id)
            if loc is not None and loc.core == self.endpoint:
                del self.where[station_id]
            self._announce([station_id, here.gateway, None])
        if here.since is not None:
            try:
                await self.presence.release(station_id, self.endpoint, here.since)
            except Exception as exc:  # left behind: the sweep deletes it
                log.warning("presence not cleared", station=station_id, error=repr(exc))

    async def heal(self) -> None:
        """Make this core's rows match its sessions: delete rows of sessions gone (a failed
        release), claim again the sessions without a row (a failed claim, or rows deleted by
        another core that took a broker reconnect for this core's death)."""
        rows = await self.presence.stations_of(self.endpoint)
        for station_id, since in rows.items():
            if station_id not in self.local:  # the row as read only: a session arriving now keeps its own
                await self.presence.release(station_id, self.endpoint, since)
        for station_id, here in list(self.local.items()):
            if station_id in rows or here.claiming:
                continue
            # no row of this core: claim again only when no core has one (another core's row means
            # the station connected there and this session is about to be closed, not the reverse)
            if await self.presence.get(station_id) is None and self.local.get(station_id) is here:
                await self._claim(station_id, here)

    def _announce(self, entry: list[Any]) -> None:
        self._where_out.append(entry)
        if not self._where_scheduled:
            self._where_scheduled = True
            self._loop.call_soon(self._flush_where)

    def _flush_where(self) -> None:
        self._where_scheduled = False
        out, self._where_out = self._where_out, []
        if out:
            self._publish(f"{self.topics.prefix}/where/{self.endpoint}", orjson.dumps(out))

    async def _announce_all(self) -> None:
        """After (re)connecting: tell the others what this core serves, learn what they serve."""
        for station_id, here in list(self.local.items()):
            self.where[station_id] = Location(self.endpoint, here.gateway, here.version)
            self._announce([station_id, here.gateway, here.version.value])
        await asyncio.sleep(0.5)  # the retained presence of the other nodes arrives first
        try:
            rows = await self.presence.all()
        except Exception as exc:
            log.warning("presence not loaded", error=repr(exc))
            return
        for row in rows:
            mine, online = row.core == self.endpoint, self.directory.online(row.core)
            if not mine and online and row.station_id not in self.where:
                self.where[row.station_id] = Location(row.core, row.gateway, OcppVersion(row.protocol))

    def _where_in(self, core: str, data: bytes) -> None:
        if core == self.endpoint:
            return
        try:
            entries = orjson.loads(data)
        except ValueError:
            return
        for entry in entries:
            try:
                station_id, gateway, version = (str(entry[0]), str(entry[1]),
                                                None if entry[2] is None else OcppVersion(entry[2]))
            except (TypeError, ValueError, IndexError, KeyError):
                log.warning("presence announcement not understood", core=core, entry=repr(entry)[:200])
                continue
            if version is None:
                loc = self.where.get(station_id)
                if loc is not None and loc.core == core and loc.gateway == gateway:
                    del self.where[station_id]
            else:
                self.where[station_id] = Location(core, gateway, version)
                if station_id in self.local:  # it connected again elsewhere: that one is newer
                    self._spawn(self._evict_here(station_id))

    def location(self, station_id: str) -> Location | None:
        """Where a station is served now (this core included); None when not connected anywhere."""
        loc = self.where.get(station_id)
        if loc is None or not (loc.core == self.endpoint or self.directory.online(loc.core)):
            return None
        return loc

    def locate(self, station_id: str) -> Location | None:
        """The other core serving a station; None when none does."""
        loc = self.location(station_id)
        return None if loc is None or loc.core == self.endpoint else loc

    # --- calls between cores ------------------------------------------------------------------
    async def call_remote(
        self, loc: Location, station_id: str, action: str, payload: dict[str, Any], timeout: float | None,
    ) -> dict[str, Any]:
        """Call a station another core serves; errors as ``csms.ocpp.control`` raises them."""
        answer = await self._request(loc.core, {"op": "call", "station": station_id, "action": action,
                                                "payload": payload, "timeout": timeout},
                                     (timeout or 30.0) + 5.0)
        if "ok" in answer:
            result = answer["ok"]
            assert isinstance(result, dict)
            return result
        kind, message = str(answer.get("error")), str(answer.get("message", ""))
        if kind == "CallErrorReceived":
            raise errors.CallErrorReceived(str(answer.get("code")), str(answer.get("description", "")),
                                           answer.get("details") or {})
        raise _REMOTE_ERRORS.get(kind, errors.ControlError)(message)

    async def _request(self, core: str, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        correlation = f"{self.endpoint}:{next(self._ids)}".encode()
        future: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._pending[correlation] = future
        self._pending_core[correlation] = core
        try:
            sent = self.client.publish(self.topics.rpc(core), orjson.dumps(body),
                                       properties=reply_properties(self._t_reply, correlation))
            if not sent:
                raise errors.StationNotConnected("the cluster's broker is not reachable")
            try:
                return await asyncio.wait_for(future, timeout_s)
            except TimeoutError:
                why = f"core {node_of(core)} did not answer in {timeout_s:.0f} s"
                raise errors.CallTimeout(why) from None
        finally:
            self._pending.pop(correlation, None)
            self._pending_core.pop(correlation, None)

    def _fail_pending(self, core: str | None, why: str) -> None:
        for correlation, future in list(self._pending.items()):
            if (core is None or self._pending_core.get(correlation) == core) and not future.done():
                future.set_result({"error": "StationNotConnected", "message": why})

    async def _answer(self, data: bytes, response: str, correlation: bytes) -> None:
        try:
            body = orjson.loads(data)
            if body.get("op") == "evict":
                await self._evict_here(str(body["station"]))
                answer: dict[str, Any] = {"ok": {}}
            else:
                timeout = body.get("timeout")
                answer = {"ok": await self._local_call(str(body["station"]), str(body["action"]),
                                                       dict(body["payload"]),
                                                       timeout=None if timeout is None else float(timeout))}
        except errors.CallErrorReceived as exc:
            answer = {"error": "CallErrorReceived", "code": exc.code, "description": exc.description,
                      "details": exc.details}
        except errors.ControlError as exc:
            answer = {"error": type(exc).__name__, "message": str(exc)}
        except Exception as exc:
            log.exception("call from another core failed")
            answer = {"error": "ControlError", "message": f"internal error: {exc!r}"}
        props = reply_properties(response, correlation)
        self.client.publish(response, orjson.dumps(answer), properties=props)

    async def _evict_at(self, core: str, station_id: str) -> None:
        with contextlib.suppress(errors.ControlError):
            await self._request(core, {"op": "evict", "station": station_id}, 10.0)

    async def _evict_here(self, station_id: str) -> None:
        """Another core serves this station now: close this core's older session."""
        session = self.registry.get(station_id)
        if session is None:
            return
        try:
            row = await self.presence.get(station_id)
        except Exception:
            row = None
        if row is not None and row.core == self.endpoint:
            return  # ours after all (it came back here in between)
        log.info("station connected through another core; older session closed", station=station_id)
        await session.close(1000, "replaced by a newer connection")

    # --- what the API shows -------------------------------------------------------------------
    def nodes(self) -> list[NodeInfo]:
        return sorted(self.directory.nodes.values(), key=lambda n: (n.role, n.node_id, n.endpoint))


async def start_core_node(
    settings: Settings, host: SessionHost, registry: SessionRegistry, db: Database, control: OcppControl,
    cluster_bus: ClusterBus | None = None,
) -> BrokerCore:
    """Link this core to the cluster's broker (``cluster.bus``) and let ``control`` reach stations
    other cores serve."""
    c = settings.cluster
    if db.sqlite:
        log.warning("a cluster on SQLite: only this core can use the database; give every core the same "
                    "PostgreSQL database (--db postgresql://...)")
    core = BrokerCore(
        host, BrokerUrl.parse(c.bus), node_id=c.node_id, topics=Topics(c.bus_prefix), registry=registry,
        presence=SqlPresence(db), call=control.call_local, qos=c.bus_qos, keepalive_s=c.bus_keepalive_s,
        max_inbox=settings.limits.max_queue, cluster_bus=cluster_bus,
    )
    await core.start()
    control.remote = core
    return core
