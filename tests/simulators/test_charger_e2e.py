"""One virtual charger against the real CSMS over loopback, in both OCPP versions."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sim_support import (
    QUICK,
    TAG,
    VERSIONS,
    action,
    active_tx,
    evse_view,
    make_charger,
    raw_csms,
    recv_frame,
    register_tags,
    running,
    transactions,
    wait_until,
)
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from csms.app import CsmsApp
from ocppj.versions import OcppVersion
from simulators import charger as charger_module
from simulators.arrivals import ArrivalConfig
from simulators.ev import SupplyKind
from simulators.metrics import Recorder
from simulators.model import EvseSpec

pytestmark = pytest.mark.e2e

QUICK_SESSION = ArrivalConfig(first_within_wall_s=0.2, first_share=1.0, sessions_per_day=0.0,
                              dwell_mean_s=1.5, dwell_min_s=1.0, dwell_max_s=2.0)


def _sid(version: OcppVersion, name: str) -> str:
    return f"{name}-{'16' if version is OcppVersion.V16 else '201'}"


@pytest.mark.parametrize("version", VERSIONS)
async def test_charger_completes_a_session_the_csms_records_with_energy(
    csms: CsmsApp, api: httpx.AsyncClient, version: OcppVersion
) -> None:
    await register_tags(api, [TAG])
    recorder = Recorder()
    station = _sid(version, "SESSION")
    async with running(make_charger(csms.ocpp_url, version, station, recorder=recorder,
                                    arrivals=QUICK_SESSION, meter_interval_s=0.3)):
        async def finished() -> list[dict[str, Any]]:
            return [t for t in await transactions(api, station) if not t["active"]]

        [tx] = await wait_until(finished, what="a finished transaction")
    assert tx["energy_wh"] > 0
    assert tx["id_tag"] == TAG
    assert tx["stop_reason"] == "Local"
    assert recorder.protocol_errors == 0, recorder.errors
    meter_action = "MeterValues" if version is OcppVersion.V16 else "TransactionEvent"
    assert recorder.calls[meter_action].count >= 2
    assert recorder.calls["Authorize"].count == 1


def _profile(version: OcppVersion, purpose: str, tx_id: Any, limit_a: float) -> dict[str, Any]:
    """A SetChargingProfile payload: TxProfile relative to the transaction, TxDefaultProfile
    absolute from a minute ago."""
    schedule: dict[str, Any] = {"chargingRateUnit": "A",
                                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_a}]}
    kind = "Relative"
    if purpose == "TxDefaultProfile":
        kind = "Absolute"
        start = datetime.now(UTC) - timedelta(minutes=1)
        schedule["startSchedule"] = start.isoformat(timespec="seconds").replace("+00:00", "Z")
    if version is OcppVersion.V16:
        profile = {"chargingProfileId": 7, "stackLevel": 1, "chargingProfilePurpose": purpose,
                   "chargingProfileKind": kind, "chargingSchedule": schedule}
        if purpose == "TxProfile":
            profile["transactionId"] = tx_id
        return {"connectorId": 1, "csChargingProfiles": profile}
    profile = {"id": 7, "stackLevel": 1, "chargingProfilePurpose": purpose, "chargingProfileKind": kind,
               "chargingSchedule": [{"id": 1, **schedule}]}
    if purpose == "TxProfile":
        profile["transactionId"] = tx_id
    return {"evseId": 1, "chargingProfile": profile}


@pytest.mark.parametrize("purpose", ["TxDefaultProfile", "TxProfile"])
@pytest.mark.parametrize("version", VERSIONS)
async def test_charger_draws_at_most_the_10_a_limit_in_its_next_meter_values(
    csms: CsmsApp, api: httpx.AsyncClient, version: OcppVersion, purpose: str
) -> None:
    await register_tags(api, [TAG])
    station = _sid(version, f"LIMIT-{purpose}")
    recorder = Recorder()
    async with running(make_charger(csms.ocpp_url, version, station, recorder=recorder)):
        tx = await wait_until(lambda: active_tx(api, station), what="an active transaction")

        async def drawing_more_than_10_a() -> dict[str, Any] | None:
            view = await evse_view(api, station)
            return view if view.get("current_a") and max(view["current_a"]) > 10.0 else None

        await wait_until(drawing_more_than_10_a, what="the EV drawing more than 10 A")
        answer = await action(api, station, "SetChargingProfile", _profile(version, purpose, tx["id"], 10.0))
        assert answer["status"] == "Accepted"
        limited_since = datetime.now(UTC)

        async def next_meter_values() -> dict[str, Any] | None:
            view = await evse_view(api, station)
            sampled = datetime.fromisoformat(view["sampled_at"].replace("Z", "+00:00"))
            return view if sampled > limited_since else None

        view = await wait_until(next_meter_values, what="meter values after the limit")
    assert max(view["current_a"]) <= 10.0
    assert max(view["current_a"]) >= 6.0  # still charging, at the limit
    assert view["power_w"] <= 10.0 * 3 * 230.0 + 1e-6
    assert recorder.protocol_errors == 0, recorder.errors


async def test_dc_charger_takes_an_ampere_limit_as_grid_current_per_phase(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    await register_tags(api, [TAG])
    station = "LIMIT-DC"
    dc = EvseSpec(SupplyKind.DC, max_power_w=150_000.0)
    async with running(make_charger(csms.ocpp_url, OcppVersion.V201, station, evse=dc)):
        await wait_until(lambda: active_tx(api, station), what="an active transaction")
        answer = await action(api, station, "SetChargingProfile",
                              _profile(OcppVersion.V201, "TxDefaultProfile", None, 50.0))
        assert answer["status"] == "Accepted"
        limited_since = datetime.now(UTC)

        async def next_meter_values() -> dict[str, Any] | None:
            view = await evse_view(api, station)
            sampled = datetime.fromisoformat(view["sampled_at"].replace("Z", "+00:00"))
            return view if sampled > limited_since else None

        view = await wait_until(next_meter_values, what="meter values after the limit")
    assert view["current_a"] == pytest.approx([50.0] * 3, abs=0.01)  # grid side, three phases
    assert view["power_w"] == pytest.approx(50.0 * 3 * 230.0, rel=1e-3)


@pytest.mark.parametrize("version", VERSIONS)
async def test_remote_stop_through_the_api_ends_the_transaction(
    csms: CsmsApp, api: httpx.AsyncClient, version: OcppVersion
) -> None:
    await register_tags(api, [TAG])
    station = _sid(version, "RSTOP")
    async with running(make_charger(csms.ocpp_url, version, station)):
        async def charged_a_little() -> dict[str, Any] | None:
            tx = await active_tx(api, station)
            return tx if tx and (tx["energy_wh"] or 0) >= 2 else None

        tx = await wait_until(charged_a_little, what="an active transaction with some energy")
        if version is OcppVersion.V16:
            answer = await action(api, station, "RemoteStopTransaction", {"transactionId": tx["id"]})
        else:
            answer = await action(api, station, "RequestStopTransaction", {"transactionId": tx["id"]})
        assert answer["status"] == "Accepted"

        async def stopped() -> dict[str, Any] | None:
            return next((t for t in await transactions(api, station) if not t["active"]), None)

        done = await wait_until(stopped, what="the transaction to stop")
    assert done["stop_reason"] == "Remote"
    assert done["energy_wh"] > 0


@pytest.mark.parametrize("version", VERSIONS)
async def test_remote_start_through_the_api_starts_a_transaction(
    csms: CsmsApp, api: httpx.AsyncClient, version: OcppVersion
) -> None:
    await register_tags(api, [TAG])
    station = _sid(version, "RSTART")
    async with running(make_charger(csms.ocpp_url, version, station, arrivals=None)) as charger:
        await wait_until(lambda: charger.accepted, what="boot accepted")
        if version is OcppVersion.V16:
            name, payload = "RemoteStartTransaction", {"idTag": TAG, "connectorId": 1}
        else:
            name = "RequestStartTransaction"
            payload = {"idToken": {"idToken": TAG, "type": "Central"}, "evseId": 1, "remoteStartId": 42}
        answer = await action(api, station, name, payload)
        assert answer["status"] == "Accepted"
        tx = await wait_until(lambda: active_tx(api, station), what="the remote-started transaction")
        busy = await action(api, station, name, payload)
    assert tx["id_tag"] == TAG
    assert busy["status"] == "Rejected"  # the EVSE is in use


async def test_unlock_in_1_6_ends_the_running_transaction(csms: CsmsApp, api: httpx.AsyncClient) -> None:
    await register_tags(api, [TAG])
    station = "UNLOCK-16"
    async with running(make_charger(csms.ocpp_url, OcppVersion.V16, station)):
        await wait_until(lambda: active_tx(api, station), what="an active transaction")
        assert (await action(api, station, "UnlockConnector", {"connectorId": 1}))["status"] == "Unlocked"

        async def stopped() -> dict[str, Any] | None:
            return next((t for t in await transactions(api, station) if not t["active"]), None)

        done = await wait_until(stopped, what="the transaction to stop")
        assert (await action(api, station, "UnlockConnector", {"connectorId": 9}))["status"] == "NotSupported"
    assert done["stop_reason"] == "UnlockCommand"


async def test_unlock_in_2_0_1_refuses_during_a_transaction_and_unlocks_when_idle(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    await register_tags(api, [TAG])
    station = "UNLOCK-201"
    async with running(make_charger(csms.ocpp_url, OcppVersion.V201, station)) as charger:
        await wait_until(lambda: active_tx(api, station), what="an active transaction")
        unlock = {"evseId": 1, "connectorId": 1}
        refused = await action(api, station, "UnlockConnector", unlock)
        assert refused["status"] == "OngoingAuthorizedTransaction"
        assert charger.unplug(1)
        await wait_until(lambda: charger.evses[1].ev is None, what="the car to leave")
        assert (await action(api, station, "UnlockConnector", unlock))["status"] == "Unlocked"
    [tx] = await transactions(api, station)
    assert tx["stop_reason"] == "EVDisconnected"


_CALLS_16: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("GetConfiguration", {"key": ["HeartbeatInterval", "NoSuchKey"]}, {"unknownKey": ["NoSuchKey"]}),
    ("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "1"}, {"status": "Accepted"}),
    ("ChangeConfiguration", {"key": "NumberOfConnectors", "value": "3"}, {"status": "Rejected"}),
    ("ChangeConfiguration", {"key": "NoSuchKey", "value": "1"}, {"status": "NotSupported"}),
    ("TriggerMessage", {"requestedMessage": "StatusNotification"}, {"status": "Accepted"}),
    ("TriggerMessage", {"requestedMessage": "MeterValues", "connectorId": 1}, {"status": "Accepted"}),
    ("GetCompositeSchedule", {"connectorId": 1, "duration": 600}, {"status": "Accepted"}),
    ("ClearChargingProfile", {"id": 99}, {"status": "Unknown"}),
    ("DataTransfer", {"vendorId": "SomeoneElse"}, {"status": "UnknownVendorId"}),
    ("DataTransfer", {"vendorId": "OpenSim", "data": "ping"}, {"status": "Accepted", "data": "ping"}),
    ("UpdateFirmware", {"location": "http://127.0.0.1:9/1.1.bin", "retrieveDate": "2020-01-01T00:00:00Z"},
     {}),
    ("GetDiagnostics", {"location": "ftp://logs.example/"}, {"fileName": "CALLS-16-diagnostics.log"}),
    ("ReserveNow", {"connectorId": 7, "expiryDate": "2030-01-01T00:00:00Z", "idTag": TAG,
                    "reservationId": 1}, {"status": "Rejected"}),  # no connector 7
    ("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}, {"status": "Accepted"}),
    ("Reset", {"type": "Soft"}, {"status": "Accepted"}),
]
_CALLS_201: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("GetVariables", {"getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
        {"component": {"name": "Nope"}, "variable": {"name": "Nope"}}]}, {}),
    ("SetVariables", {"setVariableData": [
        {"component": {"name": "SampledDataCtrlr"}, "variable": {"name": "TxUpdatedInterval"},
         "attributeValue": "1"},
        {"component": {"name": "SmartChargingCtrlr"}, "variable": {"name": "Enabled"},
         "attributeValue": "false"}]}, {}),
    ("GetBaseReport", {"requestId": 5, "reportBase": "FullInventory"}, {"status": "Accepted"}),
    ("TriggerMessage", {"requestedMessage": "StatusNotification", "evse": {"id": 1}}, {"status": "Accepted"}),
    ("TriggerMessage", {"requestedMessage": "BootNotification"}, {"status": "Rejected"}),
    ("TriggerMessage", {"requestedMessage": "MeterValues", "evse": {"id": 1}}, {"status": "Accepted"}),
    ("GetCompositeSchedule", {"evseId": 1, "duration": 600}, {"status": "Accepted"}),
    ("ClearChargingProfile", {"chargingProfileId": 99}, {"status": "Unknown"}),
    ("DataTransfer", {"vendorId": "SomeoneElse"}, {"status": "UnknownVendorId"}),
    ("UpdateFirmware", {"requestId": 3, "firmware": {"location": "http://127.0.0.1:9/1.1.bin",
                                                     "retrieveDateTime": "2020-01-01T00:00:00Z"}},
     {"status": "Accepted"}),
    ("GetLog", {"logType": "DiagnosticsLog", "requestId": 4, "log": {"remoteLocation": "ftp://logs.example/"}},
     {"status": "Accepted"}),
    ("GetTransactionStatus", {}, {"messagesInQueue": False}),
    ("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 1}}, {"status": "Accepted"}),
    ("Reset", {"type": "Immediate"}, {"status": "Accepted"}),
]


@pytest.mark.parametrize("version", VERSIONS)
async def test_charger_answers_the_csms_initiated_calls(
    csms: CsmsApp, api: httpx.AsyncClient, version: OcppVersion
) -> None:
    station = "CALLS-16" if version is OcppVersion.V16 else "CALLS-201"
    recorder = Recorder()
    calls = _CALLS_16 if version is OcppVersion.V16 else _CALLS_201
    async with running(make_charger(csms.ocpp_url, version, station, recorder=recorder,
                                    arrivals=None)) as charger:
        await wait_until(lambda: charger.accepted, what="boot accepted")
        for name, payload, expected in calls:
            if name == "Reset":
                status = await wait_until(lambda: evse_view(api, station), what="status after availability")
                assert status["connectors"][0]["status"] == "Unavailable"
            answer = await action(api, station, name, payload)
            assert {k: answer.get(k) for k in expected} == expected, (name, answer)
        await wait_until(lambda: recorder.counters["boots_accepted"] == 2, what="the reboot after Reset")
        firmware = "FirmwareStatusNotification"  # nothing listens there: Downloading, DownloadFailed
        await wait_until(lambda: firmware in recorder.calls and recorder.calls[firmware].count == 2,
                         what="firmware progress")
        log_status = "LogStatusNotification"
        if version is OcppVersion.V16:
            log_status = "DiagnosticsStatusNotification"
        await wait_until(lambda: log_status in recorder.calls and recorder.calls[log_status].count == 2,
                         what="log upload progress")
    assert charger.settings.meter_interval_s == 1
    assert recorder.calls["MeterValues"].count == 1  # triggered, outside a transaction
    if version is OcppVersion.V201:
        assert recorder.calls["NotifyReport"].count == 1
    assert recorder.protocol_errors == 0, recorder.errors
    assert recorder.counters["resets"] == 1


# --- the wire, against hand-written frames ---------------------------------------------------


def _boot_accepted(uid: str) -> str:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return orjson.dumps([3, uid, {"status": "Accepted", "currentTime": now, "interval": 300}]).decode()


@pytest.mark.parametrize("version", VERSIONS)
async def test_charger_serves_a_csms_call_while_its_own_call_is_pending(version: OcppVersion) -> None:
    crossed: list[list[Any]] = []

    async def handler(ws: ServerConnection) -> None:
        boot = await recv_frame(ws)
        assert boot[2] == "BootNotification"
        if version is OcppVersion.V16:
            call = [2, "csms-1", "GetConfiguration", {"key": ["HeartbeatInterval"]}]
        else:
            call = [2, "csms-1", "GetVariables", {"getVariableData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}]
        await ws.send(orjson.dumps(call).decode())
        crossed.append(await recv_frame(ws))  # answered although BootNotification is still pending
        await ws.send(_boot_accepted(boot[1]))
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                frame = orjson.loads(raw)
                await ws.send(orjson.dumps([3, frame[1], {}]).decode())

    recorder = Recorder()
    async with raw_csms(handler) as url:
        charger = make_charger(url, version, "CROSS", recorder=recorder, arrivals=None)
        async with running(charger):
            await wait_until(lambda: charger.accepted, what="boot accepted")
    [answer] = crossed
    assert answer[:2] == [3, "csms-1"]
    assert recorder.protocol_errors == 0, recorder.errors


@pytest.mark.parametrize("version", VERSIONS)
async def test_idle_charger_heartbeats_at_the_interval_the_csms_returned(version: OcppVersion) -> None:
    beats: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                _, uid, action, _ = orjson.loads(raw)
                if action == "BootNotification":
                    answer = {"status": "Accepted", "currentTime": now, "interval": 1}
                elif action == "Heartbeat":
                    beats.append(asyncio.get_running_loop().time())
                    answer = {"currentTime": now}
                else:
                    answer = {}
                await ws.send(orjson.dumps([3, uid, answer]).decode())

    async with raw_csms(handler) as url:
        charger = make_charger(url, version, "BEAT", arrivals=None)
        async with running(charger):
            await wait_until(lambda: len(beats) >= 3, what="three heartbeats")
    assert charger.settings.heartbeat_interval_s == 1
    assert all(0.8 <= b - a <= 2.5 for a, b in itertools.pairwise(beats))  # 1 s, on a busy machine


@pytest.mark.parametrize("version", VERSIONS)
async def test_protocol_violations_by_the_csms_get_the_right_callerror_and_are_counted(
    version: OcppVersion,
) -> None:
    answers: dict[str, list[Any]] = {}
    start = "RemoteStartTransaction" if version is OcppVersion.V16 else "RequestStartTransaction"

    async def handler(ws: ServerConnection) -> None:
        failed_one = False
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                frame = orjson.loads(raw)
                if frame[0] != 2:
                    answers[frame[1]] = frame
                elif frame[2] == "BootNotification":
                    await ws.send(_boot_accepted(frame[1]))
                    await ws.send("this is not json")
                    await ws.send(orjson.dumps([2, "bad-payload", start, {}]).decode())
                    await ws.send(orjson.dumps([2, "bad-action", "MakeCoffee", {}]).decode())
                    await ws.send(orjson.dumps([3, "nobody-asked", {}]).decode())
                elif not failed_one:
                    failed_one = True
                    await ws.send(orjson.dumps([4, frame[1], "InternalError", "boom", {}]).decode())
                else:
                    await ws.send(orjson.dumps([3, frame[1], {}]).decode())

    recorder = Recorder()
    async with raw_csms(handler) as url:
        charger = make_charger(url, version, "RUDE", recorder=recorder, arrivals=None)
        async with running(charger):
            await wait_until(lambda: len(answers) == 3 and recorder.protocol_errors == 5,
                             what="three CALLERRORs and five counted errors")
    v16 = version is OcppVersion.V16
    assert answers["-1"][2] == ("FormationViolation" if v16 else "RpcFrameworkError")
    occurrence = "OccurenceConstraintViolation" if v16 else "OccurrenceConstraintViolation"  # sic, 1.6
    assert answers["bad-payload"][2] == occurrence
    assert answers["bad-action"][2] == "NotImplemented"
    kinds = {kind.partition(":")[0] for kind in recorder.errors}
    assert kinds == {"bad_frame", "invalid_inbound_call", "unknown_inbound_action", "call_error"}


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_messages_of_an_offline_period_arrive_later_with_their_original_timestamps(
    csms: CsmsApp, api: httpx.AsyncClient, version: OcppVersion
) -> None:
    await register_tags(api, [TAG])
    station = _sid(version, "OFFLINE")
    recorder = Recorder()
    behaviour = replace(QUICK, faults=replace(QUICK.faults, offline_min_s=2.0, offline_max_s=2.0))
    async with running(make_charger(csms.ocpp_url, version, station, recorder=recorder,
                                    behaviour=behaviour)) as charger:
        await wait_until(lambda: active_tx(api, station), what="an active transaction")
        charger.inject("offline")
        await wait_until(lambda: not charger.online, what="the charger to go offline")
        await wait_until(lambda: recorder.counters["offline_messages"] >= 2, what="meter values queued")
        charger.unplug(1)
        await wait_until(lambda: charger.evses[1].tx is None, what="the session to end offline")
        ended_offline = datetime.now(UTC)
        await wait_until(lambda: charger.online, what="the reconnect")

        async def stopped() -> dict[str, Any] | None:
            return next((t for t in await transactions(api, station) if not t["active"]), None)

        tx = await wait_until(stopped, what="the queued stop to arrive")
    stopped_at = datetime.fromisoformat(tx["stopped_at"].replace("Z", "+00:00"))
    assert stopped_at <= ended_offline  # the station's time of the stop, not the time of delivery
    assert tx["stop_reason"] == "EVDisconnected"
    assert recorder.counters["offline_messages"] >= 3  # meter values and the stop
    assert recorder.counters["boots_accepted"] == 1  # a reconnect is not a reboot
    assert recorder.protocol_errors == 0, recorder.errors
    if version is OcppVersion.V201:
        assert "offline" in tx["flags"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_dropped_connection_reconnects_without_booting_again(
    csms: CsmsApp, api: httpx.AsyncClient, version: OcppVersion
) -> None:
    station = _sid(version, "DROP")
    recorder = Recorder()
    async with running(make_charger(csms.ocpp_url, version, station, recorder=recorder,
                                    arrivals=None)) as charger:
        await wait_until(lambda: charger.accepted, what="boot accepted")
        charger.inject("drop")
        await wait_until(lambda: recorder.counters["connections_established"] == 2, what="the reconnect")
        await wait_until(lambda: charger.online, what="online again")
        assert (await action(api, station, "DataTransfer", {"vendorId": "x"}))["status"] == "UnknownVendorId"
    assert recorder.counters["reconnects"] == 1
    assert recorder.counters["boots_accepted"] == 1
    assert recorder.protocol_errors == 0, recorder.errors


@pytest.mark.parametrize("version", VERSIONS)
async def test_reconnect_before_the_old_socket_died_leaves_the_new_one_in_charge(
    csms: CsmsApp, api: httpx.AsyncClient, version: OcppVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charger_module, "ZOMBIE_CHECK_S", 0.5)
    station = _sid(version, "DUP")
    recorder = Recorder()
    async with running(make_charger(csms.ocpp_url, version, station, recorder=recorder,
                                    arrivals=None)) as charger:
        await wait_until(lambda: charger.accepted, what="boot accepted")
        charger.inject("duplicate")
        await wait_until(lambda: recorder.counters["old_connections_closed_by_csms"] == 1,
                         what="the CSMS to close the old socket")
        answer = await action(api, station, "DataTransfer", {"vendorId": "x"})
    assert answer["status"] == "UnknownVendorId"  # served over the new connection
    assert recorder.counters["duplicate_connections"] == 1
    assert recorder.protocol_errors == 0, recorder.errors


@pytest.mark.parametrize("version", VERSIONS)
async def test_faulted_connector_ends_its_session_and_reports_faulted(
    csms: CsmsApp, api: httpx.AsyncClient, version: OcppVersion
) -> None:
    await register_tags(api, [TAG])
    station = _sid(version, "FAULT")
    async with running(make_charger(csms.ocpp_url, version, station)) as charger:
        await wait_until(lambda: active_tx(api, station), what="an active transaction")
        charger.inject("connector", 1)

        async def faulted() -> bool:
            view = await evse_view(api, station)
            return bool(view) and view["connectors"][0]["status"] == "Faulted"

        await wait_until(faulted, what="the Faulted status")
    [tx] = await transactions(api, station)
    assert tx["stop_reason"] == "Other"
    assert not tx["active"]
