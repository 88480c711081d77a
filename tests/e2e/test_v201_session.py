"""A full OCPP 2.0.1 session from an independent, strictly validating station implementation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from ocpp.v201 import call

from csms.app import CsmsApp
from tests.e2e.stations import Station201, connected
from tests.gateway.relay import csms_direct_or_via_gateway  # noqa: F401  (csms: direct and via a gateway)


def ts(minutes: int = 0) -> str:
    base = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    return (base + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def meter(
    minutes: int, wh: float, context: str = "Sample.Periodic", power_w: float | None = None
) -> dict[str, Any]:
    values: list[dict[str, Any]] = [
        {
            "value": wh / 1000,
            "measurand": "Energy.Active.Import.Register",
            "context": context,
            "unit_of_measure": {"unit": "kWh"},
        }
    ]
    if power_w is not None:
        values.append({"value": power_w, "measurand": "Power.Active.Import", "context": context})
    return {"timestamp": ts(minutes), "sampled_value": values}


def tx_event(
    kind: str, seq: int, minutes: int, trigger: str, mv: dict[str, Any] | None, **extra: Any
) -> call.TransactionEvent:
    info = {"transaction_id": "TX-201-1"}
    info.update(extra.pop("info", {}))
    return call.TransactionEvent(
        event_type=kind,
        timestamp=ts(minutes),
        trigger_reason=trigger,
        seq_no=seq,
        transaction_info=info,
        meter_value=[mv] if mv else None,
        **extra,
    )


async def test_full_201_session_is_answered_persisted_and_visible(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    await api.post("/api/id-tags", json={"id_tag": "RFID-9", "status": "Accepted"})
    async with connected(Station201, csms.ocpp_url, "CS201", "ocpp2.0.1") as cs:
        boot = await cs.call(
            call.BootNotification(
                charging_station={
                    "model": "DC150",
                    "vendor_name": "Volt",
                    "serial_number": "S9",
                    "firmware_version": "2.0",
                },
                reason="PowerUp",
            ),
            suppress=False,
        )
        assert boot.status == "Accepted"
        await cs.call(call.Heartbeat(), suppress=False)
        await cs.call(
            call.StatusNotification(timestamp=ts(), connector_status="Occupied", evse_id=1, connector_id=1),
            suppress=False,
        )
        auth = await cs.call(
            call.Authorize(id_token={"id_token": "RFID-9", "type": "ISO14443"}), suppress=False
        )
        assert auth.id_token_info["status"] == "Accepted"
        unknown = await cs.call(
            call.Authorize(id_token={"id_token": "WHO", "type": "ISO14443"}), suppress=False
        )
        assert unknown.id_token_info["status"] == "Unknown"

        started = await cs.call(
            tx_event(
                "Started",
                0,
                1,
                "Authorized",
                meter(1, 1_000, "Transaction.Begin"),
                id_token={"id_token": "RFID-9", "type": "ISO14443"},
                evse={"id": 1, "connector_id": 1},
                info={"charging_state": "Charging"},
            ),
            suppress=False,
        )
        assert started.id_token_info["status"] == "Accepted"
        await cs.call(
            tx_event("Updated", 1, 15, "MeterValuePeriodic", meter(15, 6_000, power_w=22_000)), suppress=False
        )
        mid = (await api.get("/api/transactions", params={"charger_id": "CS201", "active": True})).json()
        assert mid[0]["id"] == "TX-201-1" and mid[0]["energy_wh"] == 5_000
        ended = tx_event(
            "Ended",
            2,
            40,
            "EVCommunicationLost",
            meter(40, 15_500, "Transaction.End"),
            info={"stopped_reason": "EVDisconnected"},
        )
        await cs.call(ended, suppress=False)
        await cs.call(ended, suppress=False)  # retried: same seqNo, no second effect

        r = await api.post(
            "/api/chargers/CS201/actions/GetVariables",
            json={
                "getVariableData": [
                    {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
                ]
            },
        )
        assert r.status_code == 200 and r.json()["getVariableResult"][0]["attributeValue"] == "300"
        r = await api.post("/api/chargers/CS201/actions/Reset", json={"type": "OnIdle"})
        assert r.json() == {"status": "Accepted"}
        r = await api.post("/api/chargers/CS201/actions/Reset", json={"type": "Soft"})
        assert r.status_code == 400  # 1.6 value, invalid in 2.0.1: nothing sent
        assert [n for n, _ in cs.received] == ["GetVariables", "Reset"]

    charger = (await api.get("/api/chargers/CS201")).json()
    assert charger["protocol"] == "ocpp2.0.1" and charger["vendor"] == "Volt" and charger["model"] == "DC150"
    assert charger["evses"][0]["connectors"][0]["status"] == "Occupied"
    txs = (await api.get("/api/transactions", params={"charger_id": "CS201"})).json()
    assert len(txs) == 1
    tx = txs[0]
    assert (tx["id"], tx["evse_id"], tx["connector_id"], tx["id_tag"]) == ("TX-201-1", 1, 1, "RFID-9")
    assert tx["meter_start_wh"] == 1_000 and tx["meter_stop_wh"] == 15_500 and tx["energy_wh"] == 14_500
    assert tx["stop_reason"] == "EVDisconnected" and tx["flags"] == []


async def test_offline_events_out_of_order_are_kept_and_flagged(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    async with connected(Station201, csms.ocpp_url, "CS201O", "ocpp2.0.1") as cs:
        # the station was offline: Ended arrives first, then Started, with a gap in seqNo
        await cs.call(
            tx_event(
                "Ended",
                5,
                50,
                "EVCommunicationLost",
                meter(50, 9_000, "Transaction.End"),
                offline=True,
                evse={"id": 2, "connector_id": 1},
                info={"stopped_reason": "Local"},
            ),
            suppress=False,
        )
        await cs.call(
            tx_event(
                "Started",
                0,
                1,
                "CablePluggedIn",
                meter(1, 2_000, "Transaction.Begin"),
                offline=True,
                evse={"id": 2, "connector_id": 1},
            ),
            suppress=False,
        )
    tx = (await api.get("/api/transactions", params={"charger_id": "CS201O"})).json()[0]
    assert tx["evse_id"] == 2 and tx["energy_wh"] == 7_000
    assert tx["started_at"].startswith("2026-11-29T08:01") and tx["stopped_at"].startswith("2026-11-29T08:50")
    assert "offline" in tx["flags"] and "seq_out_of_order" in tx["flags"]


async def test_samples_of_events_without_evse_are_labelled_with_the_transactions(csms: CsmsApp) -> None:
    """Updated/Ended events usually omit the EVSE; their meter values belong to the transaction's."""
    from csms.core.events import MeterSampled

    seen: list[tuple[int, int, str | None]] = []
    csms.bus.subscribe(lambda e: seen.append(
        (e.sample.evse_id, e.sample.connector_id, e.sample.transaction_id)
    ), MeterSampled)
    async with connected(Station201, csms.ocpp_url, "CS201E", "ocpp2.0.1") as cs:
        await cs.call(tx_event(
            "Started", 0, 1, "CablePluggedIn", meter(1, 1_000, "Transaction.Begin"),
            evse={"id": 2, "connector_id": 3},
        ), suppress=False)
        for seq in (1, 2):
            updated = tx_event("Updated", seq, 1 + seq, "MeterValuePeriodic", meter(1 + seq, 1_000 + seq))
            await cs.call(updated, suppress=False)
        ended = tx_event("Ended", 3, 9, "EVDeparted", meter(9, 2_000, "Transaction.End"))
        await cs.call(ended, suppress=False)
    assert len(seen) == 4
    assert set(seen) == {(2, 3, "TX-201-1")}
