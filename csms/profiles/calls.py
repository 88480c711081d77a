"""The port the operator-command services send through, and the wrapper that keeps every outcome."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from csms.core.ports import Clock
from csms.errors import (
    CallErrorReceived,
    CallTimeout,
    ControlError,
    PayloadInvalid,
    ResponseInvalid,
    StationNotConnected,
)
from csms.ocpp.outbound import Outbound
from csms.store.profiles import SqlOperatorCommands
from ocppj.versions import OcppVersion

R = TypeVar("R")


class StationCalls(Protocol):
    """What the services need of the live sessions (``csms.ocpp.control.OcppControl``)."""

    def protocol_of(self, station_id: str) -> OcppVersion | None: ...

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]: ...


class VersionUnsupported(Exception):
    """The station's OCPP version has no such feature (display messages, monitoring: 2.0.1 only)."""


def failure_word(exc: ControlError) -> str:
    """The status kept for a call that got no valid answer."""
    if isinstance(exc, CallTimeout):
        return "timeout"
    if isinstance(exc, CallErrorReceived):
        return "call_error"
    if isinstance(exc, ResponseInvalid):
        return "invalid_response"
    if isinstance(exc, PayloadInvalid):
        return "invalid_payload"
    if isinstance(exc, StationNotConnected):
        return "not_connected"
    return "failed"


class RecordedCalls:
    """Send an ``Outbound`` command and keep what came of it (``operator_commands``)."""

    def __init__(self, calls: StationCalls, outcomes: SqlOperatorCommands, clock: Clock) -> None:
        self.calls = calls
        self.outcomes = outcomes
        self.clock = clock

    def version(self, station_id: str, *, need: OcppVersion | None = None, what: str = "") -> OcppVersion:
        """The connected station's version; raises ``StationNotConnected``, and ``VersionUnsupported``
        when it is not ``need`` (``what`` names the feature)."""
        version = self.calls.protocol_of(station_id)
        if version is None:
            raise StationNotConnected(f"station {station_id!r} is not connected")
        if need is not None and version is not need:
            raise VersionUnsupported(
                f"{what} exist in OCPP {need.value.removeprefix('ocpp')}; station {station_id!r} speaks "
                f"{version.value.removeprefix('ocpp')}")
        return version

    async def send(self, station_id: str, out: Outbound[R]) -> R:
        """The answer, read; a call without a valid answer is kept with its failure and re-raised."""
        try:
            reply = await self.calls.call(station_id, out.action, out.payload)
            result = out.read(reply)
        except ControlError as exc:
            if not isinstance(exc, StationNotConnected):
                await self.outcomes.record_command(
                    station_id, out.action, out.payload, failure_word(exc), {"error": str(exc)},
                    self.clock.now())
            raise
        status = reply.get("status")
        await self.outcomes.record_command(
            station_id, out.action, out.payload, status if isinstance(status, str) else "answered", reply,
            self.clock.now())
        return result
