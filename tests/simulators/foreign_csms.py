"""A minimal central system built only from the mobilityhouse ``ocpp`` library's documented
``ChargePoint`` API (``@on`` handlers, ``call(...)``), for both versions.

Nobody on this project wrote its protocol handling: the library parses, validates (the
official schemas, in both directions) and routes. The simulator must run against it with
zero protocol errors. ``running_foreign_csms()`` serves ``ws://127.0.0.1:PORT/ocpp/{id}``.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v16.enums import AuthorizationStatus, RegistrationStatus
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from ocpp.v201.enums import RegistrationStatusEnumType
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

HEARTBEAT_S = 30


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Ledger:
    """What the foreign CSMS saw, for the tests to check."""

    actions: list[tuple[str, str]] = field(default_factory=list)
    started: dict[str, float] = field(default_factory=dict)  # tx id -> meter start (Wh)
    stopped: dict[str, float] = field(default_factory=dict)  # tx id -> meter stop (Wh)
    points: dict[str, ChargePoint16 | ChargePoint201] = field(default_factory=dict)
    boot_replies: list[str] = field(default_factory=list)  # statuses before "Accepted"
    boot_times: list[float] = field(default_factory=list)

    def next_boot(self) -> tuple[str, int]:
        """(status, interval) for the next BootNotification; interval 1 s unless Accepted."""
        self.boot_times.append(time.monotonic())
        if self.boot_replies:
            return self.boot_replies.pop(0), 1
        return "Accepted", HEARTBEAT_S


_tx_ids = itertools.count(1)


class CentralSystem16(ChargePoint16):
    """OCPP 1.6 handlers of the library's documented example, plus transactions."""

    ledger: Ledger

    @on(Action16.boot_notification)
    def on_boot(self, charge_point_vendor: str, charge_point_model: str, **_: Any) -> Any:
        self.ledger.actions.append((self.id, "BootNotification"))
        status, interval = self.ledger.next_boot()
        return result16.BootNotification(current_time=_now(), interval=interval,
                                         status=RegistrationStatus(status))

    @on(Action16.heartbeat)
    def on_heartbeat(self) -> Any:
        self.ledger.actions.append((self.id, "Heartbeat"))
        return result16.Heartbeat(current_time=_now())

    @on(Action16.status_notification)
    def on_status(self, connector_id: int, error_code: str, status: str, **_: Any) -> Any:
        self.ledger.actions.append((self.id, "StatusNotification"))
        return result16.StatusNotification()

    @on(Action16.authorize)
    def on_authorize(self, id_tag: str) -> Any:
        self.ledger.actions.append((self.id, "Authorize"))
        return result16.Authorize(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action16.start_transaction)
    def on_start(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any) -> Any:
        tx_id = next(_tx_ids)
        self.ledger.actions.append((self.id, "StartTransaction"))
        self.ledger.started[str(tx_id)] = meter_start
        return result16.StartTransaction(transaction_id=tx_id,
                                         id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action16.meter_values)
    def on_meter(self, connector_id: int, meter_value: list[dict[str, Any]], **_: Any) -> Any:
        self.ledger.actions.append((self.id, "MeterValues"))
        return result16.MeterValues()

    @on(Action16.stop_transaction)
    def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int, **_: Any) -> Any:
        self.ledger.actions.append((self.id, "StopTransaction"))
        self.ledger.stopped[str(transaction_id)] = meter_stop
        return result16.StopTransaction()

    @on(Action16.firmware_status_notification)
    def on_firmware(self, status: str) -> Any:
        self.ledger.actions.append((self.id, "FirmwareStatusNotification"))
        return result16.FirmwareStatusNotification()

    @on(Action16.diagnostics_status_notification)
    def on_diagnostics(self, status: str) -> Any:
        self.ledger.actions.append((self.id, "DiagnosticsStatusNotification"))
        return result16.DiagnosticsStatusNotification()


class CentralSystem201(ChargePoint201):
    """OCPP 2.0.1 handlers, written the way the library's documentation shows."""

    ledger: Ledger

    @on(Action201.boot_notification)
    def on_boot(self, charging_station: dict[str, Any], reason: str, **_: Any) -> Any:
        self.ledger.actions.append((self.id, "BootNotification"))
        status, interval = self.ledger.next_boot()
        return result201.BootNotification(current_time=_now(), interval=interval,
                                          status=RegistrationStatusEnumType(status))

    @on(Action201.heartbeat)
    def on_heartbeat(self) -> Any:
        self.ledger.actions.append((self.id, "Heartbeat"))
        return result201.Heartbeat(current_time=_now())

    @on(Action201.status_notification)
    def on_status(self, timestamp: str, connector_status: str, evse_id: int, connector_id: int,
                  **_: Any) -> Any:
        self.ledger.actions.append((self.id, "StatusNotification"))
        return result201.StatusNotification()

    @on(Action201.authorize)
    def on_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        self.ledger.actions.append((self.id, "Authorize"))
        return result201.Authorize(id_token_info={"status": "Accepted"})

    @on(Action201.transaction_event)
    def on_transaction_event(self, event_type: str, transaction_info: dict[str, Any], **kwargs: Any) -> Any:
        self.ledger.actions.append((self.id, f"TransactionEvent.{event_type}"))
        register = _register(kwargs.get("meter_value", []))
        tx_id = transaction_info["transaction_id"]
        if event_type == "Started" and register is not None:
            self.ledger.started[tx_id] = register
        if event_type == "Ended" and register is not None:
            self.ledger.stopped[tx_id] = register
        if "id_token" in kwargs:
            return result201.TransactionEvent(id_token_info={"status": "Accepted"})
        return result201.TransactionEvent()

    @on(Action201.meter_values)
    def on_meter(self, evse_id: int, meter_value: list[dict[str, Any]], **_: Any) -> Any:
        self.ledger.actions.append((self.id, "MeterValues"))
        return result201.MeterValues()

    @on(Action201.notify_report)
    def on_report(self, request_id: int, generated_at: str, seq_no: int, **_: Any) -> Any:
        self.ledger.actions.append((self.id, "NotifyReport"))
        return result201.NotifyReport()

    @on(Action201.firmware_status_notification)
    def on_firmware(self, status: str, **_: Any) -> Any:
        self.ledger.actions.append((self.id, "FirmwareStatusNotification"))
        return result201.FirmwareStatusNotification()

    @on(Action201.log_status_notification)
    def on_log(self, status: str, **_: Any) -> Any:
        self.ledger.actions.append((self.id, "LogStatusNotification"))
        return result201.LogStatusNotification()


def _register(meter_value: list[dict[str, Any]]) -> float | None:
    for mv in meter_value:
        for sv in mv.get("sampled_value", []):
            if sv.get("measurand") == "Energy.Active.Import.Register":
                return float(sv["value"])
    return None


@dataclass
class ForeignCsms:
    url: str
    ledger: Ledger


@contextlib.asynccontextmanager
async def running_foreign_csms() -> AsyncIterator[ForeignCsms]:
    """Serve the library-built central system on a free loopback port."""
    ledger = Ledger()

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        station_id = ws.request.path.rstrip("/").split("/")[-1]
        cp: ChargePoint16 | ChargePoint201
        if ws.subprotocol == "ocpp2.0.1":
            cp = CentralSystem201(station_id, ws)
        else:
            cp = CentralSystem16(station_id, ws)
        cp.ledger = ledger
        ledger.points[station_id] = cp
        with contextlib.suppress(ConnectionClosed):
            await cp.start()

    protocols = [Subprotocol("ocpp2.0.1"), Subprotocol("ocpp1.6")]
    async with serve(handler, "127.0.0.1", 0, subprotocols=protocols) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield ForeignCsms(f"ws://127.0.0.1:{port}/ocpp", ledger)
