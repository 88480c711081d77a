"""The OCPP WebSocket endpoint: ``ws://HOST:PORT/{prefix}/{station_id}`` and, with a server
certificate, ``wss://HOST:TLS_PORT/{prefix}/{station_id}``.

The upgrade request is checked in this order, cheapest first, and refused with:

* 503 + Retry-After when handshakes arrive faster than the accept rate (or password checks
  are queued beyond their cap); 404 for a bad path or station id (at most 48 printable
  characters); 400 without a supported subprotocol (``ocpp2.0.1`` preferred over
  ``ocpp1.6``); 429 when the client IP failed to log in too often this minute;
* 404 for an unknown station (unless auto-registration is on);
* 403 when the connection is weaker than the station's security profile (no downgrade:
  profiles 2-3 need TLS, profile 3 a client certificate whose CN names the station);
* 401 when HTTP Basic auth is required (profiles 1-2, or any station with a password) and
  the username is not the station id or the password does not match.

Only then does a ``StationSession`` start and replace any older session of that station, so
a failed attempt never disturbs a live one. Connections not yet upgraded are capped per IP
and in total; the open timeout and ping/pong evict slow and half-open sockets.

The WebSockets themselves are the gateway package's (``csms.gateway``), which calls back into
this server through its ``csms.gateway.port.SessionHost`` port; this module imports nothing of
the transport. The composition root (``csms.app``) builds the listeners (``Listener``: the
in-process ``csms.gateway.local.LocalEndpoint`` for ws:// and wss://) and hands them to
``start``; the server stops them with its sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import structlog
from prometheus_client import Counter

from csms.config import LimitsConfig
from csms.core.events import MessageExchanged, StationConnected, StationDisconnected
from csms.errors import StoreUnavailable
from csms.ocpp.certificates import CertificateService
from csms.ocpp.handshake import SUBPROTOCOLS, Admitted, Refused, Upgrade, station_id_from_path
from csms.ocpp.registry import SessionRegistry
from csms.ocpp.session import Connection, Handler, StationSession
from csms.ocpp.v16.handlers import HANDLERS as V16_HANDLERS
from csms.ocpp.v201.handlers import HANDLERS as V201_HANDLERS
from csms.security.admission import Admission
from csms.security.ca import CaProvider
from csms.security.lifecycle import redact
from csms.security.records import SecurityStore, StationCredentials
from csms.security.station_auth import (
    Overloaded,
    PasswordChecker,
    Refusal,
    basic_credentials,
    needs_password,
    transport_refusal,
)
from ocppj import schemas
from ocppj.versions import OcppVersion

if TYPE_CHECKING:
    from csms.bus import Bus
    from csms.core.service import ChargingService
    from csms.metrics import Metrics

log = structlog.get_logger("csms.ocpp")

HANDLERS: dict[OcppVersion, dict[str, Handler]] = {
    OcppVersion.V16: V16_HANDLERS,
    OcppVersion.V201: V201_HANDLERS,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class OcppServerSettings:
    path_prefix: str = "/ocpp"
    call_timeout_s: float = 30.0
    client_identity: str = "station_id"  # or "serial_number": what a profile-3 CN must equal
    client_organization: str = ""
    cert_valid_days: int = 365
    limits: LimitsConfig = field(default_factory=LimitsConfig)


class Listener(Protocol):
    """A socket stations connect to (``csms.gateway.local.LocalEndpoint``)."""

    @property
    def port(self) -> int: ...

    @property
    def tls(self) -> bool:
        """True for a wss:// listener."""
        ...

    async def start(self) -> None: ...

    def stop_accepting(self) -> None:
        """New upgrades are answered 503 from now on; the listening socket closes."""
        ...

    async def stop(self) -> None:
        """Close the stations still connected (1001) and wait up to the close timeout."""
        ...


class OcppServer:
    """Decides upgrades and runs the sessions of the stations its listeners accept."""

    def __init__(
        self, settings: OcppServerSettings, service: ChargingService, registry: SessionRegistry,
        metrics: Metrics, bus: Bus, *, security_store: SecurityStore | None = None,
        ca: CaProvider | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.registry = registry
        self.metrics = metrics
        self.bus = bus
        self.store = security_store or cast("SecurityStore", service.store)
        self.admission = Admission(settings.limits, metrics.registry)
        self.passwords = PasswordChecker(max_pending=settings.limits.max_pending_password_checks)
        self.auth_failures = Counter(
            "csms_station_auth_failures_total", "Refused station logins by reason", ["reason"],
            registry=metrics.registry,
        )
        self._background: set[asyncio.Task[None]] = set()
        self.handlers: dict[OcppVersion, dict[str, Handler]] = {v: dict(h) for v, h in HANDLERS.items()}
        if ca is not None:
            certs = CertificateService(
                ca, self.store, self.spawn, valid_days=settings.cert_valid_days,
                identity_mode=settings.client_identity, organization=settings.client_organization,
            )
            for version, table in self.handlers.items():
                table.update(certs.handlers(version))
        self.endpoints: list[Listener] = []  # ws:// and/or wss://, given to ``start``
        self.stopping = False  # set by ``stop``: upgrades still coming in are answered 503

    @property
    def port(self) -> int:
        """The ws:// port (the wss:// one when plain ws:// is off)."""
        return self.endpoints[0].port

    @property
    def tls_port(self) -> int:
        tls = [e for e in self.endpoints if e.tls]
        if not tls:
            raise RuntimeError("no wss:// endpoint (no server certificate configured)")
        return tls[0].port

    async def start(self, endpoints: Sequence[Listener]) -> None:
        """Listen for stations on ``endpoints`` (ws:// first, then wss:// with a server certificate)."""
        schemas.warm(OcppVersion.V16)
        schemas.warm(OcppVersion.V201)
        self.endpoints.extend(endpoints)
        try:
            for endpoint in self.endpoints:
                await endpoint.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop accepting, close every session with 1001 (going away) and wait for the closes."""
        self.stopping = True
        for endpoint in self.endpoints:
            endpoint.stop_accepting()
        await asyncio.gather(
            *(sess.close(1001, "CSMS shutting down") for sess in self.registry),
            return_exceptions=True,
        )
        await asyncio.gather(*(endpoint.stop() for endpoint in self.endpoints), return_exceptions=True)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self.passwords.close()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background until done or the server stops."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- the upgrade ------------------------------------------------------------------
    async def decide(self, up: Upgrade) -> Admitted | Refused:
        """Whether this upgrade request may become a session (the same for every endpoint:
        the in-process one and gateway processes). Checked cheapest first; see the module doc."""
        if not self.admission.take_handshake():
            busy = Refusal(503, "overloaded", "Too many connection attempts, retry later\n")
            return Refused(busy, retry_after=self.admission.retry_after_s())
        station_id = station_id_from_path(up.path, self.settings.path_prefix)
        if station_id is None:
            self.metrics.handshakes.labels("bad_path").inc()
            return Refused(Refusal(404, "bad_path", "Expected /ocpp/{station_id}\n"))
        version = next((OcppVersion(p) for p in SUBPROTOCOLS if p in up.offered), None)
        if version is None:
            self.metrics.handshakes.labels("no_subprotocol").inc()
            offer = ", ".join(SUBPROTOCOLS)
            return Refused(
                Refusal(400, "no_subprotocol", f"Unsupported or missing subprotocol; offer one of {offer}\n")
            )
        if self.admission.throttled(up.ip):
            return Refused(Refusal(429, "throttled", "Too many failed logins, retry later\n"), retry_after=60)
        creds = await self._credentials(station_id)
        if creds is None:
            self.metrics.handshakes.labels("unknown_station").inc()
            log.info("unknown station refused", station_id=station_id, remote=up.ip)
            return Refused(Refusal(404, "unknown_station", "Unknown charging station\n"))
        s = self.settings
        refusal = transport_refusal(
            creds, tls=up.tls, peer=up.peer, identity_mode=s.client_identity,
            organization=s.client_organization,
        )
        if refusal is None and needs_password(creds):
            try:
                refusal = await self._check_password(creds, up.authorization)
            except Overloaded:
                return Refused(Refusal(503, "overloaded", "Busy, retry later\n"), retry_after=5)
        if refusal is not None:
            return self._refuse_login(station_id, up.ip, refusal)
        return Admitted(station_id, version)

    async def _credentials(self, station_id: str) -> StationCredentials | None:
        creds = await self.store.get_credentials(station_id)
        if creds is None:
            station = await self.service.admit(station_id)  # auto-registration, when on
            if station is not None:
                creds = StationCredentials(station_id, station.security_profile)
        return creds

    async def _check_password(self, creds: StationCredentials, headers: list[str]) -> Refusal | None:
        basic = basic_credentials(headers[0]) if len(headers) == 1 else None
        if basic is None:
            return Refusal(401, "no_credentials", "Authentication required\n")
        user, password = basic
        if user != creds.station_id.encode():
            return Refusal(401, "wrong_username", "Authentication failed\n")
        hashes = [h for h in (creds.password_hash, creds.pending_password_hash) if h]
        if not hashes:
            return Refusal(401, "no_password_set", "Authentication failed\n")
        matched = await self.passwords.matching_hash(creds.station_id, password, hashes)
        if matched is None:
            return Refusal(401, "wrong_password", "Authentication failed\n")
        if matched != creds.password_hash:  # the station proved it took the rotated password
            with contextlib.suppress(StoreUnavailable):
                await self.store.finish_password_rotation(
                    creds.station_id, accepted=True, pending_hash=matched
                )
        return None

    def _refuse_login(self, station_id: str, ip: str, refusal: Refusal) -> Refused:
        self.metrics.handshakes.labels("unauthorized" if refusal.status == 401 else "forbidden").inc()
        self.auth_failures.labels(refusal.reason).inc()
        if self.admission.failed(ip) <= max(self.settings.limits.auth_failures_per_ip, 1):
            log.warning("station login refused", station_id=station_id, remote=ip, reason=refusal.reason,
                        status=refusal.status)
        if refusal.status == 401:
            return Refused(refusal, www_authenticate='Basic realm="ocpp", charset="UTF-8"')
        return Refused(refusal)

    # --- the session ------------------------------------------------------------------
    async def run_session(
        self, conn: Connection, station_id: str, version: OcppVersion, *, remote: str | None, tls: bool
    ) -> None:
        """Serve an admitted connection (in-process or relayed by a gateway) until it closes."""
        session = StationSession(
            conn, station_id, version, self.handlers[version], self.service, self.metrics,
            generation=self.registry.next_generation(), call_timeout_s=self.settings.call_timeout_s,
            on_message=self._on_message,
        )
        old = self.registry.register(session)
        if old is not None:
            session.log.info("station reconnected; closing its previous connection")
            self.spawn(old.close(1000, "replaced by a newer connection"))
        self.metrics.handshakes.labels("accepted").inc()
        self.service.connected(station_id, version)
        self.bus.publish(StationConnected(station_id=station_id, protocol=version, remote=remote))
        session.log.info("station connected", remote=remote, tls=tls)
        try:
            await session.run()
        finally:
            if self.registry.unregister(session):
                self.service.disconnected(station_id)
                self.bus.publish(
                    StationDisconnected(station_id=station_id, protocol=version, code=conn.close_code)
                )
            session.log.info("station disconnected", code=conn.close_code)

    def _on_message(
        self, station_id: str, direction: str, action: str, kind: str, uid: str, payload: Any,
        raw: bytes | str,
    ) -> None:
        """What every session calls for every message: the frame taps, then the bus if anyone listens."""
        for tap in self.registry.taps:
            try:
                tap(station_id, direction, action, kind, uid, raw)
            except Exception:  # a tap must never cost a station its answer
                log.exception("frame tap failed", tap=getattr(tap, "__qualname__", repr(tap)))
        bus = self.bus
        if bus.wants(MessageExchanged):
            bus.publish(MessageExchanged(
                station_id=station_id, direction=direction, action=action, message_type=kind,
                unique_id=uid, payload=redact(action, payload) if kind == "Call" else payload,
            ))
