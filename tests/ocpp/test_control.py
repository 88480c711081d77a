"""OcppControl dispatch: the session's version picks the builder; the answer comes back typed."""

from __future__ import annotations

from typing import Any

import pytest

from csms.core.commands import ChargingLimit, CommandKind, CommandResult, CommandStatus, ResetKind
from csms.errors import StationNotConnected
from csms.ocpp.control import OcppControl
from csms.ocpp.registry import SessionRegistry
from ocppj.versions import OcppVersion


class RecordingSession:
    """Stands in for a live ``StationSession``: records calls, answers from a table."""

    def __init__(self, station_id: str, version: OcppVersion, answer: dict[str, Any]) -> None:
        self.station_id, self.version, self.answer = station_id, version, answer
        self.closed = False
        self.calls: list[tuple[str, dict[str, Any], float | None]] = []

    async def call(
        self, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        self.calls.append((action, payload, timeout))
        return self.answer


def control_with(*sessions: RecordingSession) -> OcppControl:
    registry = SessionRegistry()
    for s in sessions:
        registry.register(s)  # type: ignore[arg-type]
    return OcppControl(registry)


async def test_the_same_command_goes_out_in_each_stations_version() -> None:
    old = RecordingSession("CP16", OcppVersion.V16, {"status": "Accepted"})
    new = RecordingSession("CS201", OcppVersion.V201, {"status": "Scheduled"})
    control = control_with(old, new)
    assert await control.reset("CP16", ResetKind.HARD) == CommandResult(CommandStatus.ACCEPTED)
    assert await control.reset("CS201", ResetKind.HARD) == CommandResult(CommandStatus.SCHEDULED)
    assert old.calls == [("Reset", {"type": "Hard"}, None)]
    assert new.calls == [("Reset", {"type": "Immediate"}, None)]
    assert control.action_name("CP16", CommandKind.REMOTE_START) == "RemoteStartTransaction"
    assert control.action_name("CS201", CommandKind.REMOTE_START) == "RequestStartTransaction"
    assert control.action_name("NOPE", CommandKind.RESET) is None


async def test_limits_and_timeouts_reach_the_session() -> None:
    station = RecordingSession("CS201", OcppVersion.V201, {"status": "Accepted"})
    control = control_with(station)
    result = await control.set_limit("CS201", 2, ChargingLimit(amps=10.0, tx_id="tx-1"))
    assert result.accepted
    action, payload, _ = station.calls[0]
    assert action == "SetChargingProfile" and payload["evseId"] == 2
    await control.renew_certificate("CS201", timeout=3.0)
    renew = ("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}, 3.0)
    assert station.calls[-1] == renew


async def test_nothing_is_sent_to_an_absent_station_or_for_a_command_its_version_cannot_carry() -> None:
    station = RecordingSession("CP16", OcppVersion.V16, {"status": "Accepted"})
    control = control_with(station)
    with pytest.raises(ValueError):
        await control.remote_stop("CP16", "not-a-number")
    station.closed = True
    with pytest.raises(StationNotConnected):
        await control.unlock("CP16")
    with pytest.raises(StationNotConnected):
        await control.unlock("NOPE")
    assert station.calls == []
