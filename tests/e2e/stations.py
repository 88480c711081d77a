"""Independent OCPP peers for the end-to-end tests: the mobilityhouse ``ocpp`` library's
documented ``ChargePoint`` API, which validates every message against the official schemas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201


class Station16(ChargePoint16):
    """A 1.6 station that answers a few CSMS-initiated calls and records them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, dict[str, Any]]] = []

    @on("Reset")
    async def on_reset(self, type: str) -> result16.Reset:
        self.received.append(("Reset", {"type": type}))
        return result16.Reset(status="Accepted")

    @on("UnlockConnector")
    async def on_unlock(self, connector_id: int) -> result16.UnlockConnector:
        self.received.append(("UnlockConnector", {"connector_id": connector_id}))
        return result16.UnlockConnector(status="Unlocked")

    @on("GetConfiguration")
    async def on_get_configuration(self, **kwargs: Any) -> result16.GetConfiguration:
        self.received.append(("GetConfiguration", kwargs))
        return result16.GetConfiguration(
            configuration_key=[{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]
        )

    @on("ChangeAvailability")
    async def on_change_availability(self, connector_id: int, type: str) -> result16.ChangeAvailability:
        self.received.append(("ChangeAvailability", {"connector_id": connector_id, "type": type}))
        return result16.ChangeAvailability(status="Rejected")


class Station201(ChargePoint201):
    """A 2.0.1 station that answers a few CSMS-initiated calls and records them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, dict[str, Any]]] = []

    @on("Reset")
    async def on_reset(self, type: str, **kwargs: Any) -> result201.Reset:
        self.received.append(("Reset", {"type": type}))
        return result201.Reset(status="Accepted")

    @on("GetVariables")
    async def on_get_variables(self, get_variable_data: list[dict[str, Any]]) -> result201.GetVariables:
        self.received.append(("GetVariables", {"get_variable_data": get_variable_data}))
        return result201.GetVariables(get_variable_result=[
            {"attribute_status": "Accepted", "attribute_value": "300",
             "component": item["component"], "variable": item["variable"]}
            for item in get_variable_data
        ])

    @on("RequestStopTransaction")
    async def on_stop(self, transaction_id: str) -> result201.RequestStopTransaction:
        self.received.append(("RequestStopTransaction", {"transaction_id": transaction_id}))
        return result201.RequestStopTransaction(status="Accepted")


@asynccontextmanager
async def connected(
    cls: type[ChargePoint16] | type[ChargePoint201], url: str, station_id: str, subprotocol: str
) -> AsyncIterator[Any]:
    """Connect ``cls`` to ``url/station_id`` and run its receive loop in the background."""
    async with websockets.connect(f"{url}/{station_id}", subprotocols=[subprotocol]) as ws:  # type: ignore[list-item]
        station = cls(station_id, ws)
        task = asyncio.create_task(station.start())
        try:
            yield station
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
