"""The OCPP WebSocket endpoint: ``ws://HOST:PORT/{prefix}/{station_id}``.

The handshake is checked before upgrading: path and station id (URL-decoded, at most
48 printable characters), a supported subprotocol (``ocpp2.0.1`` preferred over
``ocpp1.6``; none → HTTP 400), registration (unknown station → HTTP 404 unless
auto-registration is on) and, for stations that have a password, HTTP Basic auth
(missing or wrong → 401). Then a ``StationSession`` runs until the socket closes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import http
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from csms.core.events import MessageExchanged, StationConnected, StationDisconnected
from csms.core.model import OcppVersion
from csms.ocpp import passwords, schemas
from csms.ocpp.registry import SessionRegistry
from csms.ocpp.session import Handler, StationSession
from csms.ocpp.v16.handlers import HANDLERS as V16_HANDLERS
from csms.ocpp.v201.handlers import HANDLERS as V201_HANDLERS

if TYPE_CHECKING:
    from csms.bus import Bus
    from csms.core.service import ChargingService
    from csms.metrics import Metrics

log = structlog.get_logger("csms.ocpp")

SUBPROTOCOLS = [OcppVersion.V201.value, OcppVersion.V16.value]
HANDLERS: dict[OcppVersion, dict[str, Handler]] = {
    OcppVersion.V16: V16_HANDLERS,
    OcppVersion.V201: V201_HANDLERS,
}
MAX_STATION_ID = 48


@dataclass(frozen=True, slots=True, kw_only=True)
class OcppServerSettings:
    host: str = "0.0.0.0"
    port: int = 9000
    path_prefix: str = "/ocpp"
    ping_interval_s: float | None = 60.0
    ping_timeout_s: float | None = 30.0
    open_timeout_s: float = 10.0
    max_message_bytes: int = 1 << 20
    call_timeout_s: float = 30.0


def station_id_from_path(path: str, prefix: str) -> str | None:
    """The station id in ``path`` under ``prefix``, or None when the path is not valid."""
    raw_path = urlsplit(path).path
    head = prefix.rstrip("/") + "/"
    if not raw_path.startswith(head):
        return None
    raw = raw_path[len(head):]
    if not raw or "/" in raw:
        return None
    station_id = unquote(raw)
    if len(station_id) > MAX_STATION_ID or not station_id.isprintable() or "/" in station_id:
        return None
    return station_id


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(username, password) from an ``Authorization: Basic`` header, None if absent/invalid."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class OcppServer:
    """Accepts stations and runs their sessions."""

    def __init__(
        self, settings: OcppServerSettings, service: ChargingService, registry: SessionRegistry,
        metrics: Metrics, bus: Bus,
    ) -> None:
        self.settings = settings
        self.service = service
        self.registry = registry
        self.metrics = metrics
        self.bus = bus
        self._server: Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        sock = next(iter(self._server.sockets))
        return int(sock.getsockname()[1])

    async def start(self) -> None:
        schemas.warm(OcppVersion.V16)
        schemas.warm(OcppVersion.V201)
        s = self.settings
        self._server = await serve(
            self._handle, s.host, s.port,
            subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS],
            process_request=self._process_request,
            ping_interval=s.ping_interval_s, ping_timeout=s.ping_timeout_s,
            open_timeout=s.open_timeout_s, max_size=s.max_message_bytes,
            compression=None, close_timeout=5, server_header="csms",
        )
        log.info("ocpp endpoint listening", url=f"ws://{s.host}:{self.port}{s.path_prefix}/{{id}}")

    async def stop(self) -> None:
        """Stop accepting, close every session with 1001 (going away)."""
        if self._server is None:
            return
        self._server.close(close_connections=False)
        await asyncio.gather(
            *(sess.close(1001, "CSMS shutting down") for sess in self.registry),
            return_exceptions=True,
        )
        await self._server.wait_closed()

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        station_id = station_id_from_path(request.path, self.settings.path_prefix)
        if station_id is None:
            self.metrics.handshakes.labels("bad_path").inc()
            return conn.respond(http.HTTPStatus.NOT_FOUND, "Expected /ocpp/{station_id}\n")
        offered = [
            p.strip() for h in request.headers.get_all("Sec-WebSocket-Protocol") for p in h.split(",")
        ]
        if not any(p in SUBPROTOCOLS for p in offered):
            self.metrics.handshakes.labels("no_subprotocol").inc()
            return conn.respond(
                http.HTTPStatus.BAD_REQUEST,
                f"Unsupported or missing subprotocol; offer one of {', '.join(SUBPROTOCOLS)}\n",
            )
        station = await self.service.admit(station_id)
        if station is None:
            self.metrics.handshakes.labels("unknown_station").inc()
            log.info("unknown station refused", station_id=station_id)
            return conn.respond(http.HTTPStatus.NOT_FOUND, "Unknown charging station\n")
        stored_hash = await self.service.store.get_password_hash(station_id)
        if stored_hash is not None or station.security_profile >= 1:
            creds = basic_credentials(request.headers.get("Authorization"))
            if (
                creds is None or stored_hash is None or creds[0] != station_id
                or not passwords.verify(creds[1], stored_hash)
            ):
                self.metrics.handshakes.labels("unauthorized").inc()
                log.warning("station authentication failed", station_id=station_id)
                resp = conn.respond(http.HTTPStatus.UNAUTHORIZED, "Authentication required\n")
                resp.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
                return resp
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        assert conn.request is not None
        station_id = station_id_from_path(conn.request.path, self.settings.path_prefix)
        if station_id is None or conn.subprotocol is None:
            await conn.close(1002, "no station id or subprotocol")
            return
        version = OcppVersion(conn.subprotocol)
        session = StationSession(
            conn, station_id, version, HANDLERS[version], self.service, self.metrics,
            generation=self.registry.next_generation(), call_timeout_s=self.settings.call_timeout_s,
            on_message=self._message_callback(station_id),
        )
        old = self.registry.register(session)
        if old is not None:
            session.log.info("station reconnected; closing its previous connection")
            asyncio.get_running_loop().create_task(old.close(1000, "replaced by a newer connection"))
        self.metrics.handshakes.labels("accepted").inc()
        self.service.connected(station_id, version)
        remote = conn.remote_address[0] if conn.remote_address else None
        self.bus.publish(StationConnected(station_id=station_id, protocol=version, remote=remote))
        session.log.info("station connected", remote=remote)
        try:
            await session.run()
        finally:
            if self.registry.unregister(session):
                self.service.disconnected(station_id)
                self.bus.publish(
                    StationDisconnected(station_id=station_id, protocol=version, code=conn.close_code)
                )
            session.log.info("station disconnected", code=conn.close_code)

    def _message_callback(self, station_id: str) -> Callable[[str, str, str, str, Any], None]:
        bus = self.bus

        def on_message(direction: str, action: str, kind: str, uid: str, payload: Any) -> None:
            if bus.wants(MessageExchanged):
                bus.publish(MessageExchanged(
                    station_id=station_id, direction=direction, action=action, message_type=kind,
                    unique_id=uid, payload=payload,
                ))

        return on_message
