"""``StationConfig`` over the CSMS's raw calls: one ChangeConfiguration per 1.6 key, SetVariables
and GetVariables in batches for 2.0.1 (payloads in ``csms.ocpp.v16|v201.desired_config``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from csms.core.ports import ChargerControl
from csms.desired_config.ports import Answer
from csms.desired_config.rules import DesiredItem, Reading, ResultStatus
from csms.errors import ControlError, StationNotConnected
from csms.ocpp.outbound import Outbound
from csms.ocpp.v16 import desired_config as v16
from csms.ocpp.v201 import desired_config as v201
from ocppj.versions import OcppVersion

R = TypeVar("R")
BATCH = 20
"""Keys per GetConfiguration, and variables per SetVariables / GetVariables call."""


def _batches(items: Sequence[DesiredItem]) -> list[Sequence[DesiredItem]]:
    return [items[i:i + BATCH] for i in range(0, len(items), BATCH)]


class OcppStationConfig:
    """Desired values to and from connected stations through ``ChargerControl.call``."""

    def __init__(self, commands: ChargerControl, *, timeout_s: float | None = None) -> None:
        self._commands = commands
        self._timeout = timeout_s

    def protocol_of(self, station_id: str) -> OcppVersion | None:
        return self._commands.protocol_of(station_id)

    async def _call(self, station_id: str, out: Outbound[R]) -> R:
        return out.read(await self._commands.call(station_id, out.action, out.payload, timeout=self._timeout))

    async def apply(
        self, station_id: str, version: OcppVersion, items: Sequence[DesiredItem]
    ) -> dict[str, Answer]:
        answers: dict[str, Answer] = {}
        gone: str | None = None  # once the station is gone, the rest fail without a call
        if version is OcppVersion.V16:
            for item in items:
                if gone is not None:
                    answers[item.key] = (ResultStatus.FAILED, gone)
                    continue
                try:
                    answers[item.key] = await self._call(station_id, v16.change(item))
                except StationNotConnected as exc:
                    gone = str(exc)
                    answers[item.key] = (ResultStatus.FAILED, gone)
                except ControlError as exc:
                    answers[item.key] = (ResultStatus.FAILED, str(exc) or type(exc).__name__)
            return answers
        for batch in _batches(items):
            try:
                got = {} if gone is not None else await self._call(station_id, v201.set_variables(batch))
            except StationNotConnected as exc:
                gone = str(exc)
                got = {}
            except ControlError as exc:
                reason = str(exc) or type(exc).__name__
                got = {item.key: (ResultStatus.FAILED, reason) for item in batch}
            for item in batch:
                answers[item.key] = got.get(item.key) or (
                    ResultStatus.FAILED, gone or "the station gave no result for this variable")
        return answers

    async def read(
        self, station_id: str, version: OcppVersion, items: Sequence[DesiredItem]
    ) -> dict[str, Reading]:
        readings: dict[str, Reading] = {}
        for batch in _batches(items):
            if version is OcppVersion.V16:
                readings.update(await self._call(station_id, v16.read([i.key for i in batch])))
            else:
                readings.update(await self._call(station_id, v201.get_variables(batch)))
        return readings
