"""The stations' end of reservations: ReserveNow and CancelReservation in each station's version.

``OcppReservations`` builds the payload with ``csms.ocpp.v16.reservations`` or
``csms.ocpp.v201.reservations`` and sends it through the raw call of ``ChargerControl``.
"""

from __future__ import annotations

from typing import Any, Protocol

from csms.core.ports import ChargerControl
from csms.errors import StationNotConnected
from csms.ocpp.v16 import reservations as v16
from csms.ocpp.v201 import reservations as v201
from csms.reservations.rules import Reservation
from ocppj.versions import OcppVersion


class Codec(Protocol):
    """One version's reservation payloads (the module ``csms.ocpp.v16|v201.reservations``)."""

    def reserve_now(self, r: Reservation, parent_id_tag: str | None = None) -> tuple[str, dict[str, Any]]: ...

    def cancel_reservation(self, reservation_id: int) -> tuple[str, dict[str, Any]]: ...

    def answer_status(self, answer: dict[str, Any]) -> str: ...


CODECS: dict[OcppVersion, Codec] = {OcppVersion.V16: v16, OcppVersion.V201: v201}


class StationReservations(Protocol):
    """What the reservation service asks of stations; a ``ControlError`` when no answer came."""

    def protocol_of(self, station_id: str) -> OcppVersion | None: ...

    async def reserve(self, r: Reservation, parent_id_tag: str | None) -> str: ...

    async def cancel(self, station_id: str, reservation_id: int) -> str: ...


class OcppReservations:
    """``StationReservations`` over the live OCPP sessions."""

    def __init__(self, commands: ChargerControl) -> None:
        self.commands = commands

    def protocol_of(self, station_id: str) -> OcppVersion | None:
        return self.commands.protocol_of(station_id)

    def _codec(self, station_id: str) -> Codec:
        version = self.protocol_of(station_id)
        if version is None:
            raise StationNotConnected(f"station {station_id} is not connected")
        return CODECS[version]

    async def reserve(self, r: Reservation, parent_id_tag: str | None) -> str:
        codec = self._codec(r.station_id)
        action, payload = codec.reserve_now(r, parent_id_tag)
        return codec.answer_status(await self.commands.call(r.station_id, action, payload))

    async def cancel(self, station_id: str, reservation_id: int) -> str:
        codec = self._codec(station_id)
        action, payload = codec.cancel_reservation(reservation_id)
        return codec.answer_status(await self.commands.call(station_id, action, payload))
