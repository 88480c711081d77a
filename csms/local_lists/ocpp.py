"""The local-list port over OCPP: each version's codec (``csms.ocpp.v16.local_list``,
``csms.ocpp.v201.local_list``) sent through the raw call of ``ChargerControl``."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from csms.core.ports import ChargerControl
from csms.errors import CallErrorReceived, ResponseInvalid, StationNotConnected
from csms.local_lists.rules import Limits, Message, SendStatus
from csms.ocpp.outbound import Outbound
from csms.ocpp.v16 import local_list as v16
from csms.ocpp.v201 import local_list as v201
from ocppj.versions import OcppVersion

R = TypeVar("R")


class ListPort(Protocol):
    """What the service asks of a station about its list. Calls raise ``ControlError``."""

    def connected(self, station_id: str) -> bool: ...
    async def version(self, station_id: str) -> int: ...
    async def limits(self, station_id: str, default_items: int) -> Limits: ...
    async def send(self, station_id: str, message: Message) -> SendStatus: ...


class _Codec(Protocol):
    ID_MAX_LENGTH: int

    def send_local_list(self, message: Message) -> Outbound[SendStatus]: ...
    def get_version(self) -> Outbound[int]: ...
    def read_limits(self, default_items: int) -> Outbound[Limits]: ...


_CODECS: dict[OcppVersion, Any] = {OcppVersion.V16: v16, OcppVersion.V201: v201}


class OcppListPort:
    """``ListPort`` in the station's own OCPP version."""

    def __init__(self, commands: ChargerControl, *, timeout_s: float) -> None:
        self.commands = commands
        self.timeout_s = timeout_s

    def _codec(self, station_id: str) -> _Codec:
        version = self.commands.protocol_of(station_id)
        if version is None:
            raise StationNotConnected(f"station {station_id!r} is not connected")
        codec: _Codec = _CODECS[version]
        return codec

    async def _call(self, station_id: str, out: Outbound[R]) -> R:
        answer = await self.commands.call(station_id, out.action, out.payload, timeout=self.timeout_s)
        return out.read(answer)

    def connected(self, station_id: str) -> bool:
        return self.commands.protocol_of(station_id) is not None

    async def version(self, station_id: str) -> int:
        return await self._call(station_id, self._codec(station_id).get_version())

    async def limits(self, station_id: str, default_items: int) -> Limits:
        """The station's bounds; ``default_items`` per message when it does not say (or refuses)."""
        codec = self._codec(station_id)
        try:
            return await self._call(station_id, codec.read_limits(default_items))
        except (CallErrorReceived, ResponseInvalid):
            return Limits(default_items, None, codec.ID_MAX_LENGTH)

    async def send(self, station_id: str, message: Message) -> SendStatus:
        return await self._call(station_id, self._codec(station_id).send_local_list(message))
