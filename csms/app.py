"""Composition root: builds every part from ``Settings``, runs them, shuts them down cleanly.

The only module that knows every concrete part: it wires the store, the core service, the OCPP
server, the gateway hub, the API and the optional plugins (``csms.plugins``) together, handing
each the typed ports it needs. Nothing imports this module but the commands and the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Generator

import structlog
import uvicorn

from csms import looplag
from csms.alarms.plugin import alarms_plugin
from csms.api.context import ApiContext
from csms.api.http import create_app
from csms.balancer.plugin import balancer_plugin
from csms.bus import Bus
from csms.cluster.core_node import BrokerCore, PresenceHost, start_core_node
from csms.cluster.events import ClusterBus
from csms.cluster.lease import Elector, LocalElector, elector_for
from csms.config import Settings
from csms.core.ports import Clock, SystemClock
from csms.core.service import ChargingService, ServiceSettings
from csms.desired_config.plugin import desired_config_plugin
from csms.display.plugin import display_plugin
from csms.errors import ConfigError
from csms.firmware.plugin import firmware_plugin
from csms.gateway.core import GatewayHub
from csms.gateway.link import MAX_MESSAGE
from csms.gateway.local import LocalEndpoint
from csms.gateway.port import SessionHost
from csms.gateway.process import GatewaySettings
from csms.gcpolicy import GcPolicy
from csms.local_lists.plugin import local_lists_plugin
from csms.metrics import Metrics
from csms.ocpp.control import OcppControl
from csms.ocpp.registry import SessionRegistry
from csms.ocpp.server import OcppServer, OcppServerSettings
from csms.plugins import Cleanup, Parts, Plugin, PluginContext
from csms.profiles.plugin import profiles_plugin
from csms.reservations.plugin import reservations_plugin
from csms.security.ca import CaProvider
from csms.security.wiring import security_parts
from csms.store.leases import SqlLeases
from csms.store.sql import SqlStore
from csms.tariffs.plugin import tariffs_plugin
from csms.telemetry.plugin import influx_plugin, mqtt_plugin
from csms.uploads.plugin import uploads_plugin

log = structlog.get_logger("csms")


def default_plugins(settings: Settings) -> list[Plugin]:
    """Plugins for ``settings``; parts that are not configured are simply absent."""
    # telemetry first: it sees the balancer's first events; each says at start when it is off
    operations = [
        tariffs_plugin,
        uploads_plugin,
        desired_config_plugin,
        profiles_plugin,
        display_plugin,
        firmware_plugin,
        local_lists_plugin,
        reservations_plugin,
    ]
    return [influx_plugin, mqtt_plugin, balancer_plugin, alarms_plugin, *operations]


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn inside our event loop: signals belong to the CSMS, not to uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class CsmsApp:
    """One CSMS process: store, core service, OCPP endpoint, API, and plugins.

    ``record_messages=False`` keeps the console from recording each station's recent messages;
    a ``gc_policy`` is installed once everything started, its pauses exported in /metrics.
    """

    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, plugins: list[Plugin] | None = None,
        record_messages: bool = True, gc_policy: GcPolicy | None = None,
    ) -> None:
        if settings.api_needs_token and not settings.api_token:
            raise ConfigError(
                f"host {settings.host!r} is not loopback: set api_token (CSMS_API_TOKEN) "
                "so the operator API is not open to the network"
            )
        self.settings = settings
        self.clock = clock or SystemClock()
        self.bus = Bus()
        self.metrics = Metrics()
        self.registry = SessionRegistry()
        self.control = OcppControl(self.registry, self.bus.publish)
        self.plugins = list(plugins or [])
        self.parts = Parts()  # what the plugins run (InfluxDB writer, MQTT bridge, balancer)
        self.record_messages = record_messages
        self.gc_policy = gc_policy
        self.ca: CaProvider | None = None
        self.store: SqlStore | None = None
        self.service: ChargingService | None = None
        self.ocpp: OcppServer | None = None
        self.gateways: GatewayHub | None = None
        self.broker: BrokerCore | None = None  # a core node of a cluster (``cluster.bus``)
        self.cluster_bus = ClusterBus(self.bus)  # every core's events, for the elected loops
        self._api: _EmbeddedUvicorn | None = None
        self._api_sock: socket.socket | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._cleanups: list[Cleanup] = []
        self.elector: Elector = LocalElector(settings.cluster.node_id)  # replaced at start for the store

    @property
    def ocpp_port(self) -> int:
        assert self.ocpp is not None
        return self.ocpp.port

    @property
    def api_port(self) -> int:
        assert self._api_sock is not None
        return int(self._api_sock.getsockname()[1])

    @property
    def ocpp_url(self) -> str:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "") else self.settings.host
        assert self.ocpp is not None
        scheme = "wss" if self.ocpp.endpoints[0].tls else "ws"
        return f"{scheme}://{host}:{self.ocpp_port}{self.settings.ocpp_path}"

    @property
    def ocpp_tls_url(self) -> str:
        """The ``wss://`` endpoint (only when a server certificate is configured)."""
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "") else self.settings.host
        assert self.ocpp is not None
        return f"wss://{host}:{self.ocpp.tls_port}{self.settings.ocpp_path}"

    @property
    def api_url(self) -> str:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "") else self.settings.host
        return f"http://{host}:{self.api_port}"

    async def start(self) -> None:
        s = self.settings
        self.store = await SqlStore.open(s.db, synchronous=s.db_synchronous)
        self.elector = elector_for(SqlLeases(self.store.db), s.cluster)
        self.service = service = ChargingService(
            self.store, self.bus.publish, self.clock,
            ServiceSettings(
                auto_register=s.auto_register, accept_unknown_tags=s.accept_unknown_tags,
                heartbeat_interval_s=s.heartbeat_interval_s,
                offline_after_heartbeats=s.offline_after_heartbeats,
            ),
            wants=self.bus.wants,
        )
        await service.load()
        events = service.events
        self.metrics.watch_station_events(events.counts, lambda: events.dropped)
        self.metrics.gauge_callback(
            "csms_stations_registered", "Stations known to the CSMS", lambda: len(service.live)
        )
        self.metrics.watch_clock_offsets(service.clock_offsets.offsets)
        for version in ("ocpp1.6", "ocpp2.0.1"):
            self.metrics.connected.labels(version).set_function(
                functools.partial(self._count_connected, version)
            )
        tls_context, ca = security_parts(s)
        self.ca = ca
        self.ocpp = ocpp = OcppServer(
            OcppServerSettings(
                path_prefix=s.ocpp_path, call_timeout_s=s.call_timeout_s, limits=s.limits,
                client_identity=s.tls.client_identity, client_organization=s.tls.client_organization,
                cert_valid_days=s.ca.valid_days,
            ),
            service, self.registry, self.metrics, self.bus, security_store=self.store, ca=ca,
        )
        self._api_sock = _bind(s.host, s.api_port)  # bound first: plugins hand out its address
        if s.public_url_is_guessed and (s.uploads.enabled or s.firmware.enabled):
            log.warning("public_url is not set and the CSMS listens on every address: firmware download "
                        "links and upload addresses name 127.0.0.1, which only this machine can reach; "
                        "set public_url", public_base_url=s.public_base_url(self.api_port))
        plugin_ctx = PluginContext(
            settings=s, clock=self.clock, bus=self.bus, metrics=self.metrics, service=service,
            sessions=self.registry, control=self.control, commands=self.control, db=self.store.db,
            targets=self.store.sites, spawn=self.spawn, parts=self.parts, alarm_store=self.store.alarms,
            public_base_url=s.public_base_url(self.api_port),
            elector=self.elector, cluster_bus=self.cluster_bus,
            elsewhere=self._served_elsewhere,
        )
        for plugin in self.plugins:
            cleanup = await plugin(plugin_ctx)
            if cleanup is not None:
                self._cleanups.append(cleanup)
        await self.elector.start()  # the singletons' leases claimed once before their loops tick
        self.metrics.watch_singletons(self.elector.names)
        self._tasks.append(asyncio.create_task(self.elector.run(), name="leases"))
        host: SessionHost = ocpp
        if s.cluster.bus:  # a core node of a cluster: gateway nodes' stations come over the broker
            self.broker = await start_core_node(s, ocpp, self.registry, self.store.db, self.control,
                                                self.cluster_bus)
            host = PresenceHost(ocpp, self.broker, self.broker.endpoint)
            core = self.broker
            self.metrics.gauge_callback("csms_cluster_broker_connected",
                                        "1 while linked to the broker, else 0",
                                        lambda: 1.0 if core.client.connected.is_set() else 0.0)
            self.metrics.gauge_callback("csms_cluster_stations_elsewhere",
                                        "Connected stations other core nodes serve",
                                        lambda: float(len(core.where) - len(core.local)))
        listeners: list[tuple[int, ssl.SSLContext | None]] = []  # ws:// and/or wss://
        if s.cluster.ocpp and (s.tls.plain or tls_context is None):
            listeners.append((s.ocpp_port, None))
        if s.cluster.ocpp and tls_context is not None:
            listeners.append((s.tls.port, tls_context))
        try:
            await ocpp.start([self._endpoint(host, ocpp, port, context) for port, context in listeners])
        except OSError as exc:
            raise ConfigError(f"cannot listen for OCPP on {exc.strerror or exc}") from None
        if s.gateway_socket:
            if s.max_message_bytes > MAX_MESSAGE:
                raise ConfigError(f"max_message_bytes over {MAX_MESSAGE} cannot travel over a gateway link")
            self.gateways = GatewayHub(ocpp, s.gateway_socket, max_inbox=s.limits.max_queue)
            try:
                await self.gateways.start()
            except OSError as exc:
                raise ConfigError(
                    f"cannot listen for gateways on {s.gateway_socket}: {exc.strerror or exc}"
                ) from None
            hub = self.gateways
            self.metrics.gauge_callback("csms_gateway_links", "Gateway processes linked to this core",
                                        lambda: len(hub.links))
            self.metrics.gauge_callback("csms_gateway_stations", "Stations connected through gateways",
                                        hub.stations)
        self._tasks.append(asyncio.create_task(
            service.flush_forever(on_deregistered=self._close_deregistered), name="store-flush"))
        self._tasks.append(asyncio.create_task(
            service.prune_forever(s.events.retention_days), name="station-event-retention"))
        self._tasks.append(asyncio.create_task(looplag.watch(self.metrics.loop_lag.observe), name="loop-lag"))
        await self._start_api()
        if self.ocpp.endpoints:
            log.info("csms started", ocpp=self.ocpp_url + "/{station_id}", api=self.api_url)
        else:
            log.info("csms started", ocpp="through gateway nodes only", api=self.api_url)
        if self.gc_policy is not None:  # after start-up: what it built is frozen out of collections
            self.gc_policy.install()
            self.metrics.watch_gc(self.gc_policy.stats)
            self.spawn(self.gc_policy.run(), name="gc-policy")

    async def _close_deregistered(self, station_ids: list[str]) -> None:
        """Close the sessions of stations removed from the registry by another process."""
        for station_id in station_ids:
            session = self.registry.get(station_id)
            if session is not None:
                await session.close(1000, "deregistered")

    def _endpoint(
        self, host: SessionHost, ocpp: OcppServer, port: int, tls_context: ssl.SSLContext | None,
    ) -> LocalEndpoint:
        """The in-process listener on ``port`` (wss:// with ``tls_context``) for ``ocpp``, whose
        sessions ``host`` runs (``ocpp`` itself, or it recording the cluster's presence)."""
        s = self.settings
        return LocalEndpoint(
            host,
            GatewaySettings(
                host=s.host, port=port, tls_context=tls_context,
                ping_interval_s=s.ping_interval_s or None, ping_timeout_s=s.ping_timeout_s or None,
                open_timeout_s=s.limits.open_timeout_s, decision_timeout_s=s.limits.open_timeout_s,
                max_message_bytes=s.max_message_bytes, backlog=s.limits.backlog,
            ),
            admission=ocpp.admission, on_pings=self.metrics.keepalive_pings.inc,
            on_timeout=self.metrics.keepalive_timeouts.inc, path_prefix=s.ocpp_path,
            max_inbox=s.limits.max_queue,
        )

    def _served_elsewhere(self, station_id: str) -> bool:
        return self.broker is not None and self.broker.locate(station_id) is not None

    def _count_connected(self, version: str) -> float:
        return sum(1 for x in self.registry if x.version.value == version)

    async def _start_api(self) -> None:
        assert self.service is not None and self.store is not None
        ctx = ApiContext(
            self.settings, self.service, self.control, self.registry, self.metrics, self.bus,
            balancer=self.parts.balancer, ca=self.ca, record_messages=self.record_messages,
            alarms=self.parts.alarms,
            sites=self.store.sites if self.store is not None else None,
            tariffs=self.parts.tariffs,
            uploads=self.parts.uploads,
            desired_config=self.parts.desired_config,
            profiles=self.parts.profiles,
            display=self.parts.display,
            firmware=self.parts.firmware,
            local_lists=self.parts.local_lists,
            id_tags=self.store.local_lists,
            reservations=self.parts.reservations,
            cluster=self.elector,
            node=self.broker,
        )
        config = uvicorn.Config(
            create_app(ctx), log_config=None, access_log=False, lifespan="off",
            ws="websockets-sansio", timeout_graceful_shutdown=3,
        )
        self._api = _EmbeddedUvicorn(config)
        assert self._api_sock is not None  # bound in start(), before the plugins
        self._tasks.append(asyncio.create_task(self._api.serve([self._api_sock]), name="api"))
        while not self._api.started:
            if self._tasks[-1].done():
                self._tasks[-1].result()
            await asyncio.sleep(0.01)

    def spawn(self, coro: Awaitable[None], name: str) -> None:
        """Run a background task for the lifetime of the app (used by plugins)."""
        async def runner() -> None:
            await coro

        self._tasks.append(asyncio.create_task(runner(), name=name))

    async def stop(self) -> None:
        """Stop accepting, close sessions with 1001, stop plugins, flush and close the store."""
        log.info("csms stopping")
        if self.gateways is not None:
            self.gateways.closing = True  # gateways' new stations are refused from now on
        if self.broker is not None:
            await self.broker.stop_accepting()  # new stations go to the other cores from now on
        if self.ocpp is not None:
            await self.ocpp.stop()
        if self.gateways is not None:
            await self.gateways.stop()
        if self.broker is not None:
            await self.broker.stop()
        if self._api is not None:
            self._api.should_exit = True
        for cleanup in reversed(self._cleanups):
            with contextlib.suppress(Exception):
                await cleanup()
        for task in self._tasks:
            if task.get_name() != "api":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.elector.stop()  # the loops have stopped: another node may take over now
        if self.service is not None:
            try:
                await self.service.flush()
            except Exception:  # what is still buffered (station events, last-seen) is lost: say so
                log.exception("final flush failed: buffered station events and last-seen times not written",
                              station_events_buffered=self.service.events.pending)
        if self._api is None and self._api_sock is not None:  # bound, but start() failed before serving
            self._api_sock.close()
        if self.store is not None:
            await self.store.close()
        log.info("csms stopped")


@contextlib.asynccontextmanager
async def running(
    settings: Settings, *, clock: Clock | None = None, plugins: list[Plugin] | None = None,
    record_messages: bool = True,
) -> AsyncIterator[CsmsApp]:
    """``async with running(settings) as app:`` — start, yield, always stop."""
    app = CsmsApp(settings, clock=clock, plugins=plugins, record_messages=record_messages)
    try:
        await app.start()
        yield app
    finally:
        await app.stop()
