"""``ChargerControl`` over live sessions: CSMS-initiated calls in the station's own version,
plus friendly helpers that build the right payload for 1.6 or 2.0.1."""

from __future__ import annotations

from typing import Any

from csms.errors import StationNotConnected
from csms.ocpp.registry import SessionRegistry
from ocppj.versions import OcppVersion


class OcppControl:
    """Send calls to connected stations; see ``StationSession.call`` for the errors raised."""

    def __init__(self, registry: SessionRegistry) -> None:
        self.registry = registry

    def protocol_of(self, station_id: str) -> OcppVersion | None:
        session = self.registry.get(station_id)
        return session.version if session is not None else None

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        session = self.registry.get(station_id)
        if session is None or session.closed:
            raise StationNotConnected(f"station {station_id!r} is not connected")
        return await session.call(action, payload, timeout=timeout)

    def _version(self, station_id: str) -> OcppVersion:
        version = self.protocol_of(station_id)
        if version is None:
            raise StationNotConnected(f"station {station_id!r} is not connected")
        return version

    # --- helpers: same intent, the station's version decides the payload ---------------
    async def remote_start(
        self, station_id: str, id_tag: str, *, evse_id: int = 1, remote_start_id: int = 1
    ) -> dict[str, Any]:
        if self._version(station_id) is OcppVersion.V16:
            return await self.call(
                station_id, "RemoteStartTransaction", {"idTag": id_tag, "connectorId": evse_id}
            )
        return await self.call(station_id, "RequestStartTransaction", {
            "idToken": {"idToken": id_tag, "type": "Central"}, "evseId": evse_id,
            "remoteStartId": remote_start_id,
        })

    async def remote_stop(self, station_id: str, tx_id: str) -> dict[str, Any]:
        if self._version(station_id) is OcppVersion.V16:
            return await self.call(station_id, "RemoteStopTransaction", {"transactionId": int(tx_id)})
        return await self.call(station_id, "RequestStopTransaction", {"transactionId": tx_id})

    async def reset(self, station_id: str, *, hard: bool = False) -> dict[str, Any]:
        if self._version(station_id) is OcppVersion.V16:
            return await self.call(station_id, "Reset", {"type": "Hard" if hard else "Soft"})
        return await self.call(station_id, "Reset", {"type": "Immediate" if hard else "OnIdle"})

    async def unlock(self, station_id: str, *, evse_id: int = 1, connector_id: int = 1) -> dict[str, Any]:
        if self._version(station_id) is OcppVersion.V16:
            return await self.call(station_id, "UnlockConnector", {"connectorId": evse_id})
        return await self.call(
            station_id, "UnlockConnector", {"evseId": evse_id, "connectorId": connector_id}
        )

    async def change_availability(
        self, station_id: str, *, operative: bool, evse_id: int = 0
    ) -> dict[str, Any]:
        if self._version(station_id) is OcppVersion.V16:
            return await self.call(station_id, "ChangeAvailability", {
                "connectorId": evse_id, "type": "Operative" if operative else "Inoperative",
            })
        payload: dict[str, Any] = {"operationalStatus": "Operative" if operative else "Inoperative"}
        if evse_id:
            payload["evse"] = {"id": evse_id}
        return await self.call(station_id, "ChangeAvailability", payload)

    async def trigger(self, station_id: str, message: str, *, evse_id: int | None = None) -> dict[str, Any]:
        if self._version(station_id) is OcppVersion.V16:
            p16: dict[str, Any] = {"requestedMessage": message}
            if evse_id is not None:
                p16["connectorId"] = evse_id
            return await self.call(station_id, "TriggerMessage", p16)
        p201: dict[str, Any] = {"requestedMessage": message}
        if evse_id is not None:
            p201["evse"] = {"id": evse_id}
        return await self.call(station_id, "TriggerMessage", p201)

    async def get_configuration(self, station_id: str, keys: list[str] | None = None) -> dict[str, Any]:
        """1.6 GetConfiguration; for 2.0.1 use ``get_variables``."""
        return await self.call(station_id, "GetConfiguration", {"key": keys} if keys else {})

    async def change_configuration(self, station_id: str, key: str, value: str) -> dict[str, Any]:
        return await self.call(station_id, "ChangeConfiguration", {"key": key, "value": value})

    async def get_variables(self, station_id: str, items: list[tuple[str, str]]) -> dict[str, Any]:
        """2.0.1 GetVariables for (component, variable) pairs."""
        return await self.call(station_id, "GetVariables", {"getVariableData": [
            {"component": {"name": c}, "variable": {"name": v}} for c, v in items
        ]})

    async def set_variables(self, station_id: str, items: list[tuple[str, str, str]]) -> dict[str, Any]:
        """2.0.1 SetVariables for (component, variable, value) triples."""
        return await self.call(station_id, "SetVariables", {"setVariableData": [
            {"component": {"name": c}, "variable": {"name": v}, "attributeValue": val}
            for c, v, val in items
        ]})

    async def set_current_limit(
        self, station_id: str, *, evse_id: int, limit_a: float, tx_id: str | None = None,
        profile_id: int = 1000, stack_level: int = 1, number_phases: int | None = None,
    ) -> dict[str, Any]:
        """Install a current limit (A per phase): TxProfile on ``tx_id``, else TxDefaultProfile."""
        period: dict[str, Any] = {"startPeriod": 0, "limit": round(limit_a, 1)}
        if number_phases is not None:
            period["numberPhases"] = number_phases
        purpose = "TxProfile" if tx_id is not None else "TxDefaultProfile"
        if self._version(station_id) is OcppVersion.V16:
            profile: dict[str, Any] = {
                "chargingProfileId": profile_id, "stackLevel": stack_level,
                "chargingProfilePurpose": purpose, "chargingProfileKind": "Relative",
                "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [period]},
            }
            if tx_id is not None:
                profile["transactionId"] = int(tx_id)
            return await self.call(
                station_id, "SetChargingProfile", {"connectorId": evse_id, "csChargingProfiles": profile}
            )
        profile = {
            "id": profile_id, "stackLevel": stack_level, "chargingProfilePurpose": purpose,
            "chargingProfileKind": "Relative",
            "chargingSchedule": [
                {"id": profile_id, "chargingRateUnit": "A", "chargingSchedulePeriod": [period]}
            ],
        }
        if tx_id is not None:
            profile["transactionId"] = tx_id
        return await self.call(
            station_id, "SetChargingProfile", {"evseId": evse_id, "chargingProfile": profile}
        )

    async def clear_profile(self, station_id: str, profile_id: int) -> dict[str, Any]:
        key = "id" if self._version(station_id) is OcppVersion.V16 else "chargingProfileId"
        return await self.call(station_id, "ClearChargingProfile", {key: profile_id})

    async def update_firmware(self, station_id: str, location: str, retrieve_at: str) -> dict[str, Any]:
        if self._version(station_id) is OcppVersion.V16:
            return await self.call(
                station_id, "UpdateFirmware", {"location": location, "retrieveDate": retrieve_at}
            )
        return await self.call(station_id, "UpdateFirmware", {
            "requestId": 1, "firmware": {"location": location, "retrieveDateTime": retrieve_at},
        })

    async def upload_log(self, station_id: str, location: str) -> dict[str, Any]:
        if self._version(station_id) is OcppVersion.V16:
            return await self.call(station_id, "GetDiagnostics", {"location": location})
        return await self.call(station_id, "GetLog", {
            "logType": "DiagnosticsLog", "requestId": 1, "log": {"remoteLocation": location},
        })
