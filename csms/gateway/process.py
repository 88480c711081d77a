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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from csms.app import stop_on_signals
from csms.config import LimitsConfig, Settings
from csms.errors import ConfigError
from csms.gateway.link import MAX_MESSAGE, LinkProtocol, Op
from csms.gcpolicy import GcPolicy, note_churn
from csms.metrics import GcCollector
from csms.ocpp.keepalive import KeepaliveSweep
from csms.ocpp.server import SUBPROTOCOLS, offered_subprotocols
from csms.ocpp.session import _write_now
from csms.security.admission import Admission, peer_ip
from csms.security.tls import peer_certificate, uses_tls
from csms.security.wiring import security_parts

log = structlog.get_logger("csms.gateway")

LINK_LOST = 0  # the answer an upgrade gets when the core's link dropped before the decision


def _close_body(conn: ServerConnection) -> bytes:
    return orjson.dumps([conn.close_code or 1006, conn.close_reason or ""])


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySettings:
    core_socket: str
    host: str = "127.0.0.1"
    port: int = 9000
    reuse_port: bool = False
    tls_context: ssl.SSLContext | None = None
    ping_interval_s: float | None = 60.0
    ping_timeout_s: float | None = 30.0
    open_timeout_s: float = 10.0
    decision_timeout_s: float = 30.0  # how long an upgrade waits for the core's answer
    max_message_bytes: int = 1 << 20
    max_queue: int = 16
    close_timeout_s: float = 5.0
    backlog: int = 1024  # absorbs reconnect storms without SYN drops (limits.backlog)
    # connections not yet upgraded, per IP and in total (limits.max_pre_auth_*; 0 = unlimited)
    max_pre_auth_per_ip: int = 64
    max_pre_auth_total: int = 4096


class _Station:
    """A relayed station, as the keepalive sweep sees it."""

    __slots__ = ("cid", "conn", "drained", "frames_in", "keepalive_mark", "outbox", "resumed", "station_id")

    relayed = False  # for the keepalive sweep: this process holds the socket

    def __init__(self, conn: ServerConnection, cid: int, now: float) -> None:
        self.conn = conn
        self.cid = cid
        self.station_id = f"gateway connection {cid}"
        self.frames_in = 0
        self.keepalive_mark = (0, now)
        self.resumed: asyncio.Event | None = None  # set while the core asked us to stop reading
        # frames for the station waiting for its socket to drain; while there are any, we stop
        # reading from it (as the in-process session does while its send waits)
        self.outbox: deque[bytes] | None = None
        self.drained: asyncio.Event | None = None

    async def ping(self) -> Any:
        return await self.conn.ping()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.conn.close(code, reason)


class Gateway:
    """Relays stations between its WebSocket listener and the core's gateway socket."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.link: LinkProtocol | None = None
        self._ids = itertools.count(1)
        self._opening: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self._stations: dict[int, _Station] = {}
        self._server: Server | None = None
        self._link_lost = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = settings.port
        self.admission: Admission | None = None
        # what ``csms gateway --metrics-port`` exports (csms.gateway.process.serve_metrics)
        self.registry = CollectorRegistry()
        self._pings = Counter("csms_keepalive_pings_total",
                              "WebSocket pings sent to stations that went quiet", registry=self.registry)
        self._timeouts = Counter("csms_keepalive_timeouts_total",
                                 "Stations closed (1011) for not answering a ping", registry=self.registry)
        Gauge("csms_gateway_connected_stations", "Stations relayed by this gateway now",
              registry=self.registry).set_function(lambda: len(self._stations))
        Gauge("csms_gateway_core_linked", "1 while linked to the core, else 0",
              registry=self.registry).set_function(lambda: 0 if self.link is None or self.link.closed else 1)

    # --- the link to the core --------------------------------------------------------------
    async def connect(self, *, retry_s: float = 0.5, max_retry_s: float = 5.0) -> None:
        """Link to the core, waiting for it as long as it takes."""
        loop = asyncio.get_running_loop()
        delay = retry_s
        while True:
            try:
                _, proto = await loop.create_unix_connection(
                    lambda: LinkProtocol(self._on_frame, self._on_lost), self.settings.core_socket
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

    def _on_lost(self, exc: Exception | None) -> None:
        self.link = None
        self._link_lost.set()
        for fut in self._opening.values():
            if not fut.done():
                fut.set_result((LINK_LOST, b""))
        self._opening.clear()
        stations, self._stations = self._stations, {}
        for st in stations.values():
            if st.resumed is not None:
                st.resumed.set()
            self._spawn(st.conn.close(1011, "CSMS core unavailable"))
        log.warning("core link lost; stations closed", stations=len(stations),
                    error=str(exc) if exc else None)

    def _on_frame(self, op: int, cid: int, body: bytes) -> None:
        if op == Op.SEND:
            st = self._stations.get(cid)
            if st is not None:
                self._send(st, body)
        elif op in (Op.ACCEPT, Op.REFUSE):
            fut = self._opening.pop(cid, None)
            if fut is not None and not fut.done():
                fut.set_result((op, body))
        elif op == Op.PAUSE:
            st = self._stations.get(cid)
            if st is not None and st.resumed is None:
                st.resumed = asyncio.Event()
        elif op == Op.RESUME:
            st = self._stations.get(cid)
            if st is not None and st.resumed is not None:
                st.resumed.set()
                st.resumed = None
        elif op == Op.CLOSE:
            st = self._stations.get(cid)
            if st is not None:
                code, reason = orjson.loads(body)
                self._spawn(st.conn.close(int(code), str(reason)))
        else:
            log.warning("unexpected frame from core ignored", op=op)

    def _send(self, st: _Station, body: bytes) -> None:
        """Write a frame to the station now, or queue it behind the ones waiting for the socket."""
        if st.outbox is None:
            if _write_now(st.conn, body):
                return
            st.outbox, st.drained = deque(), asyncio.Event()
            self._spawn(self._drain(st))
        st.outbox.append(body)

    @staticmethod
    async def _drain(st: _Station) -> None:
        """Send the station's queued frames, each when its socket takes it (one task per episode)."""
        outbox, drained = st.outbox, st.drained
        assert outbox is not None and drained is not None
        try:
            while outbox:
                with contextlib.suppress(ConnectionClosed):
                    await st.conn.send(outbox.popleft(), text=True)
        finally:
            st.outbox = st.drained = None
            drained.set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the WebSocket side ----------------------------------------------------------------
    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        link = self.link
        if link is None or link.closed:
            response = conn.respond(503, "CSMS core unavailable, retry later\n")
            response.headers["Retry-After"] = "5"
            return response
        transport = conn.transport
        peer = peer_certificate(transport)
        facts = {
            "path": request.path,
            "offered": offered_subprotocols(request.headers),
            "authorization": request.headers.get_all("Authorization"),
            "ip": peer_ip(transport), "tls": uses_tls(transport),
            "peer": [list(peer.common_names), list(peer.organizations), str(peer.serial)] if peer else None,
        }
        cid = next(self._ids)
        fut: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._opening[cid] = fut
        link.send(Op.OPEN, cid, orjson.dumps(facts))
        try:
            async with asyncio.timeout(self.settings.decision_timeout_s):
                op, body = await fut
            if op == LINK_LOST:
                raise ConnectionError("core link lost")
        except (TimeoutError, ConnectionError):
            self._opening.pop(cid, None)
            if self.link is not None:
                self.link.send(Op.CLOSED, cid, orjson.dumps([1006, "handshake abandoned"]))
            response = conn.respond(503, "CSMS core busy, retry later\n")
            response.headers["Retry-After"] = "5"
            return response
        except asyncio.CancelledError:  # the station hung up (open timeout) while the core decided
            self._opening.pop(cid, None)
            if self.link is not None:
                self.link.send(Op.CLOSED, cid, orjson.dumps([1006, "handshake abandoned"]))
            raise
        if op == Op.REFUSE:
            refusal = orjson.loads(body)
            response = conn.respond(int(refusal["status"]), str(refusal["text"]))
            response.headers.update(refusal["headers"])
            return response
        self._stations[cid] = _Station(conn, cid, asyncio.get_running_loop().time())
        conn.gateway_cid = cid  # type: ignore[attr-defined]  # from now on its loss is reported to the core
        conn.gateway_subprotocol = body.decode()  # type: ignore[attr-defined]
        return None

    @staticmethod
    def _select_subprotocol(conn: ServerConnection, offered: Any) -> Subprotocol | None:
        chosen: str | None = getattr(conn, "gateway_subprotocol", None)
        return Subprotocol(chosen) if chosen is not None and chosen in offered else None

    async def _handle(self, conn: ServerConnection) -> None:
        upgraded = getattr(conn, "upgraded", None)
        if upgraded is not None:
            upgraded()  # no longer counted against the pre-authentication caps
        cid: int | None = getattr(conn, "gateway_cid", None)
        st = self._stations.get(cid) if cid is not None else None
        if st is None or cid is None:
            await conn.close(1011, "CSMS core unavailable")
            return
        if conn.request is not None:
            conn.request.headers.clear()  # ~4.6 KiB a station, no longer needed
        conn.response = None
        link, recv = self.link, conn.recv
        try:
            while True:
                message = await recv()  # ConnectionClosed ends the relay, however the socket closed
                st.frames_in += 1
                if link is None or link.closed:
                    break
                if isinstance(message, str):
                    link.send(Op.MSG, cid, message.encode())
                else:
                    link.send(Op.BINARY, cid, message)
                if st.resumed is not None:  # this station's messages queue up in the core
                    await st.resumed.wait()
                if st.drained is not None:  # the station does not read its answers: wait for it
                    await st.drained.wait()
                if not link.writable.is_set():
                    await link.writable.wait()  # the core reads slower than all stations send
        except ConnectionClosed:
            pass
        finally:
            if self._stations.pop(cid, None) is not None and self.link is not None:
                self.link.send(Op.CLOSED, cid, _close_body(conn))

    def _connection_lost(self, conn: ServerConnection) -> None:
        """A socket is gone: relayed, refused, or one whose upgrade failed after the core accepted it."""
        note_churn()
        cid = getattr(conn, "gateway_cid", None)
        st = self._stations.pop(cid, None) if cid is not None else None
        if st is None:
            return
        if st.resumed is not None:
            st.resumed.set()
        if st.outbox is not None:
            st.outbox.clear()
        if self.link is not None:
            self.link.send(Op.CLOSED, st.cid, _close_body(conn))

    async def start(self) -> None:
        """Link to the core (waiting for it), then listen for stations."""
        await self.connect()
        await self.listen()

    async def listen(self) -> None:
        """Listen for stations (after ``connect``)."""
        s = self.settings
        gateway = self
        # the pre-authentication caps are per process: each gateway counts its own connections
        limits = LimitsConfig(max_pre_auth_per_ip=s.max_pre_auth_per_ip,
                              max_pre_auth_total=s.max_pre_auth_total)
        self.admission = Admission(limits, self.registry)
        guarded = self.admission.connection_class()

        class RelayedConnection(guarded):  # type: ignore[valid-type,misc]
            def connection_lost(self, exc: Exception | None) -> None:
                super().connection_lost(exc)
                gateway._connection_lost(self)
                # websockets binds our select_subprotocol to each protocol through a closure
                # over this connection: a reference cycle of ~60 objects per connection that
                # only the cyclic collector (or, frozen, a thaw) would free. Break it.
                self.protocol.__dict__.pop("select_subprotocol", None)

        self._server = await serve(
            self._handle, s.host, s.port, ssl=s.tls_context, reuse_port=s.reuse_port or None,
            subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS], select_subprotocol=self._select_subprotocol,
            process_request=self._process_request, ping_interval=None, ping_timeout=None,
            open_timeout=s.open_timeout_s, max_size=s.max_message_bytes, max_queue=s.max_queue,
            compression=None, close_timeout=s.close_timeout_s, server_header="csms",
            create_connection=RelayedConnection, backlog=s.backlog,
        )
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])
        if s.ping_interval_s:
            sweep = KeepaliveSweep(lambda: list(self._stations.values()), interval_s=s.ping_interval_s,
                                   timeout_s=s.ping_timeout_s, on_pings=self._pings.inc,
                                   on_timeout=self._timeouts.inc)
            self._spawn(sweep.run())
        log.info("gateway listening", url=f"{'wss' if s.tls_context else 'ws'}://{s.host}:{self.port}")

    async def serve_forever(self) -> None:
        """Relay until cancelled; relink whenever the core goes away."""
        while True:
            await self._link_lost.wait()
            await self.connect()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=False)
        stations = list(self._stations.values())
        await asyncio.gather(*(st.conn.close(1001, "gateway shutting down") for st in stations),
                             return_exceptions=True)
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
    if not path:
        raise ConfigError(
            "csms gateway needs the core's socket: --core PATH (or gateway_socket in the config)"
        )
    if settings.max_message_bytes > MAX_MESSAGE:
        raise ConfigError(f"max_message_bytes over {MAX_MESSAGE} cannot travel over a gateway link")
    gateway = Gateway(GatewaySettings(
        core_socket=path, host=settings.host, port=settings.ocpp_port, reuse_port=reuse_port,
        ping_interval_s=settings.ping_interval_s or None, ping_timeout_s=settings.ping_timeout_s or None,
        open_timeout_s=settings.limits.open_timeout_s, max_message_bytes=settings.max_message_bytes,
        max_queue=settings.limits.max_queue, backlog=settings.limits.backlog,
        max_pre_auth_per_ip=settings.limits.max_pre_auth_per_ip,
        max_pre_auth_total=settings.limits.max_pre_auth_total,
    ))
    stop = stop_on_signals()
    stopping = asyncio.ensure_future(stop.wait())
    stop_metrics: Callable[[], None] | None = None
    try:
        linking = asyncio.ensure_future(gateway.connect())
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
        collecting = asyncio.ensure_future(gc_policy.run())
        relinking = asyncio.ensure_future(gateway.serve_forever())
        await asyncio.wait([relinking, stopping], return_when=asyncio.FIRST_COMPLETED)
        relinking.cancel()
        collecting.cancel()
    finally:
        stopping.cancel()
        await gateway.stop()
        if stop_metrics is not None:
            await asyncio.to_thread(stop_metrics)
    return 0
