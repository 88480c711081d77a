"""UpdateFirmware over OCPP: the station's version picks the codec, the raw call carries it."""

from __future__ import annotations

from collections.abc import Callable

from csms.core.ports import ChargerControl
from csms.errors import ControlError
from csms.firmware.campaign import FirmwareRequest
from csms.ocpp.v16 import firmware as v16
from csms.ocpp.v201 import firmware as v201
from ocppj.versions import OcppVersion


class OcppUpdateSender:
    """``UpdateSender`` over ``ChargerControl.call``."""

    def __init__(
        self, commands: ChargerControl, protocol_of: Callable[[str], OcppVersion | None], timeout_s: float
    ) -> None:
        self.commands = commands
        self.protocol_of = protocol_of
        self.timeout_s = timeout_s

    async def send(self, charger_id: str, request: FirmwareRequest) -> tuple[bool, str | None]:
        codec = v201 if self.protocol_of(charger_id) is OcppVersion.V201 else v16
        action, payload = codec.update_request(request)
        try:
            reply = await self.commands.call(charger_id, action, payload, timeout=self.timeout_s)
        except ControlError as exc:
            return False, f"{type(exc).__name__}: {exc}"[:200]
        accepted, detail = codec.read_answer(action, reply)
        return accepted, detail
