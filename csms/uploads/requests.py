"""The port through which the upload service asks stations for files, and its OCPP implementation."""

from __future__ import annotations

from typing import Protocol

from csms.core.ports import ChargerControl
from csms.errors import StationNotConnected
from csms.ocpp.v16 import uploads as v16
from csms.ocpp.v201 import uploads as v201
from csms.uploads.rules import Kind, RequestAnswer, UploadParams
from ocppj.versions import OcppVersion


class LogRequests(Protocol):
    """Send one upload request to a station; raises ``ControlError`` when no valid answer came."""

    async def request(
        self, station_id: str, location: str, request_id: int, params: UploadParams
    ) -> RequestAnswer: ...


class OcppLogRequests:
    """``LogRequests`` over the station's own OCPP version (``ChargerControl.call``)."""

    def __init__(self, commands: ChargerControl) -> None:
        self._commands = commands

    async def request(
        self, station_id: str, location: str, request_id: int, params: UploadParams
    ) -> RequestAnswer:
        version = self._commands.protocol_of(station_id)
        if version is None:
            raise StationNotConnected(f"station {station_id!r} is not connected")
        if params.kind is Kind.DIAGNOSTICS:
            if version is not OcppVersion.V16:
                raise ValueError("GetDiagnostics is OCPP 1.6 only; ask a 2.0.1 station for a DiagnosticsLog")
            payload = v16.get_diagnostics(location, params)
            answer = await self._commands.call(station_id, "GetDiagnostics", payload)
            return v16.read_get_diagnostics(answer)
        if version is OcppVersion.V16:
            payload = v16.get_log(location, request_id, params)
            return v16.read_get_log(await self._commands.call(station_id, "GetLog", payload))
        payload = v201.get_log(location, request_id, params)
        return v201.read_get_log(await self._commands.call(station_id, "GetLog", payload))
