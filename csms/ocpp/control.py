"""``ChargerControl`` over live sessions: a domain command goes out in the station's own version
(built by ``csms.ocpp.v16.commands`` or ``csms.ocpp.v201.commands``) and its answer comes back
as a domain result. ``call`` sends a raw action, for the operator API's raw route.

A call sent but never answered (timeout, or the connection lost meanwhile) is published as
``CommandFailed`` before its error is raised to the caller. A connection closed in order
(1000 or 1001: the CSMS shutting down, deregistering or replacing the station, or the station
saying goodbye) fails the call too, but loses nothing: it is not published."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from csms.core.commands import (
    CertificateKind,
    ChargingLimit,
    CommandKind,
    CommandResult,
    ConfigurationReport,
    ResetKind,
)
from csms.core.events import CommandFailed, Event
from csms.errors import CallTimeout, StationNotConnected
from csms.ocpp.outbound import CommandSet, Outbound
from csms.ocpp.registry import SessionRegistry
from csms.ocpp.session import StationSession
from csms.ocpp.v16 import commands as v16
from csms.ocpp.v201 import commands as v201
from ocppj.versions import OcppVersion

R = TypeVar("R")

COMMANDS: dict[OcppVersion, CommandSet] = {OcppVersion.V16: v16, OcppVersion.V201: v201}

CLOSED_IN_ORDER = frozenset({1000, 1001})
"""Close codes of a connection ended on purpose: normal closure (deregistered, replaced by a newer
connection) and going away (``csms`` shutting down). Lost connections end otherwise: 1006 (no
close frame), 1011 (keepalive timeout), the gateway link lost."""


def closed_in_order(session: StationSession) -> bool:
    """Whether ``session``'s connection was closed on purpose rather than lost."""
    return session.ws.close_code in CLOSED_IN_ORDER


class RemoteStations(Protocol):
    """Stations other core nodes serve (``csms.cluster.core_node.BrokerCore``)."""

    def locate(self, station_id: str) -> Any: ...

    async def call_remote(
        self, loc: Any, station_id: str, action: str, payload: dict[str, Any], timeout: float | None,
    ) -> dict[str, Any]: ...


class OcppControl:
    """Send commands to connected stations; see ``StationSession.call`` for the errors raised.

    With ``remote`` set (a core node of a cluster), a station another core serves is called
    through that core."""

    def __init__(self, registry: SessionRegistry, publish: Callable[[Event], None] | None = None) -> None:
        self.registry = registry
        self.publish = publish
        self.remote: RemoteStations | None = None

    def _elsewhere(self, station_id: str) -> Any:
        """Where another core serves ``station_id``; None when this core does (or nobody)."""
        if self.remote is None:
            return None
        session = self.registry.get(station_id)
        if session is not None and not session.closed:
            return None
        return self.remote.locate(station_id)

    def protocol_of(self, station_id: str) -> OcppVersion | None:
        session = self.registry.get(station_id)
        if session is not None:
            return session.version
        loc = self._elsewhere(station_id)
        return None if loc is None else loc.version

    def action_name(self, station_id: str, kind: CommandKind) -> str | None:
        """The action that carries ``kind`` to this station; None when it is not connected."""
        version = self.protocol_of(station_id)
        return COMMANDS[version].action_name(kind) if version is not None else None

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        loc = self._elsewhere(station_id)
        if loc is not None and self.remote is not None:
            return await self.remote.call_remote(loc, station_id, action, payload, timeout)
        return await self._call(self._live(station_id), action, payload, timeout)

    async def call_local(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """``call`` to a station this process serves (a call forwarded by another core)."""
        return await self._call(self._live(station_id), action, payload, timeout)

    async def _call(
        self, session: StationSession, action: str, payload: dict[str, Any], timeout: float | None
    ) -> dict[str, Any]:
        """``session.call``; an unanswered call is published as ``CommandFailed``."""
        try:
            return await session.call(action, payload, timeout=timeout)
        except CallTimeout:
            self._failed(session.station_id, action, "timeout")
            raise
        except StationNotConnected:
            if not closed_in_order(session):
                self._failed(session.station_id, action, "connection lost")
            raise

    def _failed(self, station_id: str, action: str, reason: str) -> None:
        if self.publish is not None:
            self.publish(CommandFailed(station_id=station_id, action=action, reason=reason))

    def _live(self, station_id: str) -> StationSession:
        session = self.registry.get(station_id)
        if session is None or session.closed:
            raise StationNotConnected(f"station {station_id!r} is not connected")
        return session

    async def _send(
        self, station_id: str, build: Callable[[CommandSet], Outbound[R]], *, timeout: float | None = None
    ) -> R:
        loc = self._elsewhere(station_id)
        if loc is not None:
            out = build(COMMANDS[loc.version])
            return out.read(await self.call(station_id, out.action, out.payload, timeout=timeout))
        session = self._live(station_id)
        out = build(COMMANDS[session.version])
        return out.read(await self._call(session, out.action, out.payload, timeout))

    # --- domain commands: the station's version decides the action and payload ---------
    async def set_limit(self, station_id: str, evse_id: int, limit: ChargingLimit) -> CommandResult:
        return await self._send(station_id, lambda c: c.set_limit(evse_id, limit))

    async def clear_limit(self, station_id: str, profile_id: int) -> CommandResult:
        return await self._send(station_id, lambda c: c.clear_limit(profile_id))

    async def remote_start(
        self, station_id: str, id_tag: str, *, evse_id: int = 1, remote_start_id: int = 1
    ) -> CommandResult:
        return await self._send(station_id, lambda c: c.remote_start(id_tag, evse_id, remote_start_id))

    async def remote_stop(self, station_id: str, tx_id: str) -> CommandResult:
        return await self._send(station_id, lambda c: c.remote_stop(tx_id))

    async def reset(self, station_id: str, kind: ResetKind) -> CommandResult:
        return await self._send(station_id, lambda c: c.reset(kind))

    async def unlock(self, station_id: str, *, evse_id: int = 1, connector_id: int = 1) -> CommandResult:
        return await self._send(station_id, lambda c: c.unlock(evse_id, connector_id))

    async def change_availability(
        self, station_id: str, *, operative: bool, evse_id: int = 0
    ) -> CommandResult:
        return await self._send(station_id, lambda c: c.change_availability(operative, evse_id))

    async def trigger_message(
        self, station_id: str, message: str, *, evse_id: int | None = None
    ) -> CommandResult:
        return await self._send(station_id, lambda c: c.trigger_message(message, evse_id))

    async def read_configuration(self, station_id: str, *, request_id: int = 1) -> ConfigurationReport:
        return await self._send(station_id, lambda c: c.read_configuration(request_id))

    async def set_password(
        self, station_id: str, password: str, *, timeout: float | None = None
    ) -> CommandResult:
        return await self._send(station_id, lambda c: c.set_password(password), timeout=timeout)

    async def install_certificate(
        self, station_id: str, kind: CertificateKind, pem: str, *, timeout: float | None = None
    ) -> CommandResult:
        return await self._send(station_id, lambda c: c.install_certificate(kind, pem), timeout=timeout)

    async def renew_certificate(self, station_id: str, *, timeout: float | None = None) -> CommandResult:
        return await self._send(station_id, lambda c: c.renew_certificate(), timeout=timeout)

    async def update_firmware(
        self, station_id: str, location: str, retrieve_at: str, *, request_id: int = 1
    ) -> CommandResult:
        return await self._send(station_id, lambda c: c.update_firmware(location, retrieve_at, request_id))

    async def upload_log(self, station_id: str, location: str, *, request_id: int = 1) -> CommandResult:
        return await self._send(station_id, lambda c: c.upload_log(location, request_id))
