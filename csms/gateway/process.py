"""``csms gateway``: a process that holds stations' WebSockets for the core (ADR 0005).

It terminates the WebSocket (and TLS), asks the core whether each upgrade may proceed, relays
whole text frames both ways over one Unix-socket link, and pings quiet stations itself. It
keeps no OCPP state: when the core goes away it closes its stations with 1011 (they reconnect
when it is back) and refuses new ones with 503 until the link is up again. Several gateways
may share one port (``--reuse-port``), each with its own open-files limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from csms import looplag
from csms.config import LimitsConfig, Settings
from csms.errors import ConfigError
from csms.gateway.link import MAX_MESSAGE, Link, LinkProtocol, Op
from csms.gateway.station import LINK_LOST, StationProtocol
from csms.gcpolicy import GcPolicy
from csms.metrics import GcCollector, loop_lag_histogram
from csms.ocpp.keepalive import KeepaliveSweep
from csms.runtime import stop_on_signals
from csms.security.admission import Admission
from csms.security.wiring import security_parts

log = structlog.get_logger("csms.gateway")

@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySettings:
    core_socket: str = ""  # "" for the in-process endpoint (linked by ``attach``)
    host: str = "127.0.0.1"
    port: int = 9000
    reuse_port: bool = False
    tls_context: ssl.SSLContext | None = None
    ping_interval_s: float | None = 60.0
    ping_timeout_s: float | None = 30.0
    open_timeout_s: float = 10.0
    decision_timeout_s: float = 30.0  # how long an upgrade waits for the core's answer
    max_message_bytes: int = 1 << 20
    close_timeout_s: float = 5.0
    backlog: int = 1024  # absorbs reconnect storms without SYN drops (limits.backlog)
    # connections not yet upgraded, per IP and in total (limits.max_pre_auth_*; 0 = unlimited)
    max_pre_auth_per_ip: int = 64
    max_pre_auth_total: int = 4096


class Gateway:
    """Relays stations between its WebSocket listener and the core's gateway socket."""

    def __init__(
        self, settings: GatewaySettings, *, admission: Admission | None = None,
        on_pings: Callable[[int], object] | None = None, on_timeout: Callable[[], object] | None = None,
    ) -> None:
        """A gateway process's (its own registry and metrics), or with ``admission`` and the
        keepalive counters given, the in-process endpoint's (the core's; ``csms.gateway.local``)."""
        self.settings = settings
        self.loop = asyncio.get_running_loop()
        self.link: Link | None = None
        self._ids = itertools.count(1)
        self._opening: dict[int, StationProtocol] = {}  # upgrades waiting for the core's decision
        self._stations: dict[int, StationProtocol] = {}
        self._waiting_link: set[StationProtocol] = set()  # stopped reading while the link was full
        self._unupgraded: set[StationProtocol] = set()  # connected, the core not asked yet
        self._emptied: asyncio.Event | None = None  # set when the last station left (``stop``)
        self.stopping = False  # no upgrade is accepted any more (503)
        self._server: asyncio.Server | None = None
        self._link_lost = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = settings.port
        # what ``csms gateway --metrics-port`` exports (csms.gateway.process.serve_metrics)
        self.registry = CollectorRegistry()
        if admission is None:
            # the pre-authentication caps are per process: each gateway counts its own connections
            limits = LimitsConfig(max_pre_auth_per_ip=settings.max_pre_auth_per_ip,
                                  max_pre_auth_total=settings.max_pre_auth_total)
            admission = Admission(limits, self.registry)
            Gauge("csms_gateway_connected_stations", "Stations relayed by this gateway now",
                  registry=self.registry).set_function(lambda: len(self._stations))
            Gauge("csms_gateway_core_linked", "1 while linked to the core, else 0", registry=self.registry
                  ).set_function(lambda: 0 if self.link is None or self.link.closed else 1)
        self.admission = admission
        if on_pings is None:
            on_pings = Counter("csms_keepalive_pings_total",
                               "WebSocket pings sent to stations that went quiet", registry=self.registry).inc
        if on_timeout is None:
            on_timeout = Counter("csms_keepalive_timeouts_total",
                                 "Stations closed (1011) for not answering a ping",
                                 registry=self.registry).inc
        self._on_pings, self._on_timeout = on_pings, on_timeout

    def attach(self, link: Link) -> None:
        """Use ``link`` to the core (the in-process endpoint's loopback) instead of ``connect``."""
        self.link = link
        self._link_lost.clear()

    # --- the link to the core --------------------------------------------------------------
    async def connect(self, *, retry_s: float = 0.5, max_retry_s: float = 5.0) -> None:
        """Link to the core, waiting for it as long as it takes."""
        delay = retry_s
        while True:
            try:
                _, proto = await self.loop.create_unix_connection(
                    lambda: LinkProtocol(self.on_core_frame, self.on_core_lost, self._on_link_writable),
                    self.settings.core_socket,
                )
            except OSError as exc:
                log.info("core not reachable yet", socket=self.settings.core_socket, error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_retry_s)
                continue
            self.link = proto
            self._link_lost.clear()
            log.info("linked to core", socket=self.settings.core_socket)
            return

    def on_core_lost(self, exc: Exception | None) -> None:
        self.link = None
        self._link_lost.set()
        opening, self._opening = self._opening, {}
        for st in opening.values():
            self._guarded(st, st.decided, LINK_LOST, b"")
        stations, self._stations = self._stations, {}
        self._waiting_link.clear()
        for st in stations.values():
            self._guarded(st, st.start_close, 1011, "CSMS core unavailable")
        if stations or not self.stopping:
            log.warning("core link lost; stations closed", stations=len(stations),
                        error=str(exc) if exc else None)

    def _on_link_writable(self) -> None:
        waiting, self._waiting_link = self._waiting_link, set()
        for st in waiting:
            st.link_writable()

    @staticmethod
    def _guarded(st: StationProtocol, step: Callable[..., None], *args: Any) -> None:
        """One station's step; a failure costs that station its socket, never the link."""
        try:
            step(*args)
        except Exception:
            log.exception("station step failed; connection dropped", station=st.station_id)
            if st.transport is not None:
                st.transport.abort()

    def on_core_frame(self, op: int, cid: int, body: bytes) -> None:
        if op == Op.ACCEPT or op == Op.REFUSE:
            opening = self._opening.pop(cid, None)
            if opening is not None:
                self._guarded(opening, opening.decided, op, body)
            return
        st = self._stations.get(cid)
        if op == Op.SEND:
            if st is not None:
                self._guarded(st, st.send_text, body)
        elif op == Op.PAUSE:
            if st is not None:
                st.core_pause()
        elif op == Op.RESUME:
            if st is not None:
                self._guarded(st, st.core_resume)
        elif op == Op.CLOSE:
            if st is not None:
                code, reason = orjson.loads(body)
                self._guarded(st, st.start_close, int(code), str(reason))
        else:
            log.warning("unexpected frame from core ignored", op=op)

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the WebSocket side: csms.gateway.station ---------------------------------------------
    async def start(self) -> None:
        """Link to the core (waiting for it), then listen for stations."""
        await self.connect()
        await self.listen()

    async def listen(self) -> None:
        """Listen for stations (after ``connect``)."""
        s = self.settings
        self._server = await self.loop.create_server(
            lambda: StationProtocol(self), s.host, s.port, ssl=s.tls_context,
            ssl_handshake_timeout=s.open_timeout_s if s.tls_context else None,
            reuse_port=s.reuse_port or None, backlog=s.backlog,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        if s.ping_interval_s:
            sweep = KeepaliveSweep(lambda: list(self._stations.values()), interval_s=s.ping_interval_s,
                                   timeout_s=s.ping_timeout_s, on_pings=self._on_pings,
                                   on_timeout=self._on_timeout)
            self._spawn(sweep.run())
        if s.core_socket:  # the in-process endpoint logs its own (csms.gateway.local)
            log.info("gateway listening", url=f"{'wss' if s.tls_context else 'ws'}://{s.host}:{self.port}")

    async def serve_forever(self) -> None:
        """Relay until cancelled; relink whenever the core goes away."""
        while True:
            await self._link_lost.wait()
            await self.connect()

    def stop_accepting(self) -> None:
        """Close the listening socket; upgrades still in progress are answered 503."""
        self.stopping = True
        if self._server is not None:
            self._server.close()

    async def stop(self) -> None:
        """Stop listening, close every station (1001) and wait for them up to the close timeout."""
        self.stop_accepting()
        opening, self._opening = self._opening, {}
        for opener in opening.values():  # the core hears CLOSED, the station 503
            self._guarded(opener, opener.decided, LINK_LOST, b"")
        for st in list(self._unupgraded):  # no request yet (or still in TLS): nothing to answer
            if st.transport is not None:
                st.transport.abort()
        self._emptied = asyncio.Event()
        for st in list(self._stations.values()):
            st.start_close(1001, "gateway shutting down")
        if self._stations:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._emptied.wait(), self.settings.close_timeout_s)
        for st in list(self._stations.values()):  # the close timeout passed: drop the rest
            if st.transport is not None:
                st.transport.abort()
        if self.link is not None:
            self.link.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> Callable[[], None]:
    """``GET /metrics`` (Prometheus text) on ``host:port`` from a thread; returns its stop."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(f"cannot listen for metrics on {host}:{port}: {exc.strerror or exc}") from None

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop


async def run_gateway(
    settings: Settings, *, core: str | None = None, reuse_port: bool = False, metrics_port: int | None = None,
) -> int:
    """``csms gateway``: link to the core, listen, relay until SIGTERM/SIGINT."""
    path = core or settings.gateway_socket
    bus = settings.cluster.bus
    if not path and not bus:
        raise ConfigError(
            "csms gateway needs its core: --bus mqtt://HOST:PORT (core nodes on a broker) or "
            "--core PATH (one core's gateway socket on this machine)"
        )
    if settings.max_message_bytes > MAX_MESSAGE:
        raise ConfigError(f"max_message_bytes over {MAX_MESSAGE} cannot travel over a gateway link")
    gateway = Gateway(GatewaySettings(
        core_socket=path, host=settings.host, port=settings.ocpp_port, reuse_port=reuse_port,
        ping_interval_s=settings.ping_interval_s or None, ping_timeout_s=settings.ping_timeout_s or None,
        open_timeout_s=settings.limits.open_timeout_s, decision_timeout_s=settings.limits.open_timeout_s,
        max_message_bytes=settings.max_message_bytes,
        backlog=settings.limits.backlog,
        max_pre_auth_per_ip=settings.limits.max_pre_auth_per_ip,
        max_pre_auth_total=settings.limits.max_pre_auth_total,
    ))
    node = None
    if bus:  # linked to any number of core nodes through the broker (csms.cluster)
        from csms.cluster.broker import BrokerUrl, Topics
        from csms.cluster.gateway_node import BrokerGatewayNode

        c = settings.cluster
        node = BrokerGatewayNode(gateway, BrokerUrl.parse(bus), node_id=c.node_id,
                                 topics=Topics(c.bus_prefix), qos=c.bus_qos, keepalive_s=c.bus_keepalive_s)
    stop = stop_on_signals()
    stopping = asyncio.ensure_future(stop.wait())
    stop_metrics: Callable[[], None] | None = None
    background: list[asyncio.Future[Any]] = []
    try:
        linking = asyncio.ensure_future(node.connect() if node is not None else gateway.connect())
        await asyncio.wait([linking, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not linking.done():
            linking.cancel()
            return 0
        # TLS after the link: a CA the core creates on its first start is then on disk
        tls_context, _ = security_parts(settings)
        gateway.settings = replace(gateway.settings, tls_context=tls_context)
        try:
            await gateway.listen()
        except OSError as exc:
            where = f"{settings.host}:{settings.ocpp_port}"
            raise ConfigError(f"cannot listen on {where}: {exc.strerror or exc}") from None
        gc_policy = GcPolicy(settings.gc.policy())
        gc_policy.install()
        gateway.registry.register(GcCollector(gc_policy.stats))
        if metrics_port is not None:
            stop_metrics = serve_metrics(gateway.registry, settings.host, metrics_port)
            log.info("gateway metrics", url=f"http://{settings.host}:{metrics_port}/metrics")
        background.append(asyncio.ensure_future(gc_policy.run()))
        background.append(asyncio.ensure_future(looplag.watch(loop_lag_histogram(gateway.registry).observe)))
        if node is not None:
            scheme = "wss" if gateway.settings.tls_context else "ws"
            log.info("gateway listening", url=f"{scheme}://{settings.host}:{gateway.port}",
                     node=node.endpoint, bus=bus)
        relinking = asyncio.ensure_future(node.run() if node is not None else gateway.serve_forever())
        background.append(relinking)
        await asyncio.wait([relinking, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        for task in background:
            task.cancel()
        for outcome in await asyncio.gather(*background, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.error("gateway task failed", error=repr(outcome))
        await gateway.stop()
        if node is not None:
            await node.close()
        if stop_metrics is not None:
            await asyncio.to_thread(stop_metrics)
    return 0
