"""Reservations end to end: the real CSMS and the virtual charger over loopback, both versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from ocppj.versions import OcppVersion
from simulators.arrivals import ArrivalConfig
from tests.reservations.support import (
    OTHER,
    TAG,
    VERSIONS,
    charger,
    charging,
    connector_status,
    in_s,
    online,
    reservations_csms,
    sid,
    status_is,
    wait_until,
)

pytestmark = pytest.mark.e2e


def _body(version: OcppVersion, station: str, expires_at: str, tag: str = TAG) -> dict[str, Any]:
    """The 1.6 stations are reserved by connector_id, the 2.0.1 ones by evse_id."""
    where = "connector_id" if version is OcppVersion.V16 else "evse_id"
    return {"charger_id": station, where: 1, "id_tag": tag, "expires_at": expires_at}


async def _tags(api: httpx.AsyncClient) -> None:
    for tag in (TAG, OTHER):
        assert (await api.post("/api/id-tags", json={"id_tag": tag})).status_code in (200, 201)


async def _reservation(api: httpx.AsyncClient, rid: int) -> dict[str, Any]:
    r = await api.get(f"/api/reservations/{rid}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _remote_start(version: OcppVersion, tag: str) -> tuple[str, dict[str, Any]]:
    if version is OcppVersion.V16:
        return "RemoteStartTransaction", {"connectorId": 1, "idTag": tag}
    return "RequestStartTransaction", {"evseId": 1, "remoteStartId": 7,
                                       "idToken": {"idToken": tag, "type": "Central"}}


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_reservation_admits_only_its_tag_and_the_session_carries_it(
    tmp_path: Path, version: OcppVersion
) -> None:
    station = sid(version, "RES-USE")
    async with reservations_csms(tmp_path) as (app, api):
        await _tags(api)
        async with charging(charger(app.ocpp_url, version, station)) as cp:
            await wait_until(lambda: online(api, station), what="the station online and Available")
            created = await api.post("/api/reservations", json=_body(version, station, in_s(60)))
            assert created.status_code == 201, created.text
            rid = created.json()["id"]
            assert created.json()["status"] == "active"
            await wait_until(lambda: status_is(api, station, "Reserved"), what="the EVSE Reserved")

            assert cp.present(1, OTHER) is False  # refused at the EVSE
            assert cp.reservations.refused_locally == 1
            action, payload = _remote_start(version, OTHER)
            answer = await api.post(f"/api/chargers/{station}/actions/{action}", json=payload)
            assert answer.status_code == 200 and answer.json()["status"] == "Rejected"
            assert "Authorize" not in cp.recorder.calls  # no Authorize sent for the refused tag
            assert (await _reservation(api, rid))["status"] == "active"
            assert await connector_status(api, station) == "Reserved"

            assert cp.present(1, TAG) is True

            async def used() -> dict[str, Any] | None:
                r = await _reservation(api, rid)
                return r if r["status"] == "used" else None

            reservation = await wait_until(used, what="the reservation used")
            txs = (await api.get("/api/transactions", params={"charger_id": station})).json()
            [tx] = txs
            assert tx["active"] and tx["id_tag"] == TAG
            assert tx["reservation_id"] == rid
            assert reservation["transaction_id"] == str(tx["id"])
            detail = (await api.get(f"/api/transactions/{station}/{tx['id']}")).json()
            assert detail["reservation_id"] == rid
            ended = {"charger_id": station, "active": "false"}
            listed = (await api.get("/api/reservations", params=ended)).json()
            assert [r["id"] for r in listed] == [rid]


@pytest.mark.parametrize("version", VERSIONS)
async def test_an_unused_reservation_expires_and_the_evse_is_available_again(
    tmp_path: Path, version: OcppVersion
) -> None:
    station = sid(version, "RES-EXP")
    async with reservations_csms(tmp_path) as (app, api):
        await _tags(api)
        async with charging(charger(app.ocpp_url, version, station)) as cp:
            await wait_until(lambda: online(api, station), what="the station online and Available")
            created = await api.post("/api/reservations", json=_body(version, station, in_s(3)))
            assert created.status_code == 201, created.text
            rid = created.json()["id"]
            active = (await api.get("/api/reservations", params={"active": "true"})).json()
            assert [r["id"] for r in active] == [rid]
            await wait_until(lambda: status_is(api, station, "Reserved"), what="the EVSE Reserved")

            async def expired() -> dict[str, Any] | None:
                r = await _reservation(api, rid)
                return r if r["status"] == "expired" else None

            reservation = await wait_until(expired, what="the reservation expired")
            assert reservation["ended_at"] is not None and reservation["transaction_id"] is None
            await wait_until(lambda: status_is(api, station, "Available"), what="the EVSE Available again")
            assert (await api.get("/api/reservations", params={"active": "true"})).json() == []
            if version is OcppVersion.V201:  # the station said so too
                await wait_until(lambda: _sent(cp.recorder.calls, "ReservationStatusUpdate"),
                                 what="ReservationStatusUpdate(Expired)")
            assert cp.present(1, OTHER) is True  # anyone may charge now


async def _sent(calls: Any, action: str) -> bool:
    return action in calls and calls[action].count >= 1


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_cancelled_reservation_frees_the_evse_and_cannot_be_cancelled_twice(
    tmp_path: Path, version: OcppVersion
) -> None:
    station = sid(version, "RES-CANCEL")
    async with reservations_csms(tmp_path) as (app, api):
        await _tags(api)
        async with charging(charger(app.ocpp_url, version, station)):
            await wait_until(lambda: online(api, station), what="the station online and Available")
            rid = (await api.post("/api/reservations", json=_body(version, station, in_s(60)))).json()["id"]
            await wait_until(lambda: status_is(api, station, "Reserved"), what="the EVSE Reserved")
            cancelled = await api.delete(f"/api/reservations/{rid}")
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["status"] == "cancelled"
            assert cancelled.json()["cancel_answer"] == "Accepted"
            await wait_until(lambda: status_is(api, station, "Available"), what="the EVSE Available again")
            again = await api.delete(f"/api/reservations/{rid}")
            assert again.status_code == 409 and again.json()["error"] == "not_active"
            assert (await api.delete("/api/reservations/999999")).status_code == 404
            trail = (await api.get("/api/audit", params={"limit": 4})).json()["items"]
            assert [(e["action"], e["target"], e["result"]) for e in reversed(trail)] == [
                ("create_reservation", station, "ok"), ("cancel_reservation", str(rid), "ok"),
                ("cancel_reservation", str(rid), "not_active"), ("cancel_reservation", "999999", "not_found"),
            ]


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_refusing_station_leaves_a_kept_rejected_reservation(
    tmp_path: Path, version: OcppVersion
) -> None:
    station = sid(version, "RES-REFUSE")
    async with (reservations_csms(tmp_path) as (app, api),
                charging(charger(app.ocpp_url, version, station)) as cp):
        await wait_until(lambda: online(api, station), what="the station online and Available")
        cp.reservations.refuse_with = "Occupied"
        refused = await api.post("/api/reservations", json=_body(version, station, in_s(60)))
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "reservation_rejected"
        assert "Occupied" in refused.json()["detail"]
        [kept] = (await api.get("/api/reservations", params={"charger_id": station})).json()
        assert kept["status"] == "rejected" and kept["station_answer"] == "Occupied"
        assert await connector_status(api, station) == "Available"
        cp.reservations.refuse_with = None
        missing = dict(_body(version, station, in_s(60)), **{"connector_id": 9, "evse_id": 9})
        unknown = await api.post("/api/reservations", json=missing)
        assert unknown.status_code == 409 and unknown.json()["error"] == "reservation_rejected"
        cp.change_availability(1, False)
        unavailable = await api.post("/api/reservations", json=_body(version, station, in_s(60)))
        assert "answered Unavailable" in unavailable.json()["detail"]
        cp.inject("connector", 1)
        faulted = await api.post("/api/reservations", json=_body(version, station, in_s(60)))
        assert "answered Faulted" in faulted.json()["detail"]
        answers = [r["station_answer"] for r in (await api.get("/api/reservations")).json()]
        assert answers == ["Faulted", "Unavailable", "Rejected", "Occupied"]


async def test_api_errors_are_precise_and_nothing_is_sent_for_a_bad_request(tmp_path: Path) -> None:
    station = "RES-ERR-16"
    async with reservations_csms(tmp_path) as (app, api):
        body = _body(OcppVersion.V16, station, in_s(60))
        assert (await api.post("/api/reservations", json=body)).json()["error"] == "not_found"
        assert (await api.put(f"/api/chargers/{station}", json={"security_profile": 0})).status_code == 200
        offline = await api.post("/api/reservations", json=body)
        assert offline.status_code == 409 and offline.json()["error"] == "not_connected"
        async with charging(charger(app.ocpp_url, OcppVersion.V16, station)) as cp:
            await wait_until(lambda: online(api, station), what="the station online and Available")
            cases = [
                (dict(body, expires_at=in_s(-5)), "not in the future"),
                (dict(body, expires_at="2030-01-01T00:00:00"), "time zone"),
                (dict(body, expires_at=in_s(30 * 86_400)), "ahead"),
                (dict(body, id_tag="X" * 21), "1 to 20 characters"),
                (dict(body, connector_type="cType2"), "2.0.1 field"),
                (dict(body, evse_id=2), "not two different values"),
            ]
            for bad, why in cases:
                r = await api.post("/api/reservations", json=bad)
                assert r.status_code == 400 and r.json()["error"] == "bad_request", (bad, r.text)
                assert why in r.json()["detail"]
            for bad_body in ({**body, "extra": 1}, {**body, "connector_id": -1}, {"charger_id": station}):
                r = await api.post("/api/reservations", json=bad_body)
                assert r.status_code == 400 and r.json()["error"] == "invalid_payload", r.text
            assert (await api.get("/api/reservations")).json() == []  # nothing kept
            assert cp.reservations.held == {}  # nothing reached the station

            first = await api.post("/api/reservations", json=body)
            assert first.status_code == 201
            clash = await api.post("/api/reservations", json=dict(body, id_tag=OTHER))
            assert clash.status_code == 409 and clash.json()["error"] == "reservation_clash"
            for path in ("/api/reservations/0", "/api/reservations/abc", "/api/reservations/99999999999"):
                assert (await api.get(path)).json()["error"] == "invalid_payload"
            assert (await api.get("/api/reservations/424242")).status_code == 404
            assert (await api.get("/api/reservations", params={"limit": 0})).status_code == 400
            page = await api.get("/api/reservations", params={"limit": 1})
            assert page.headers["X-Next-Cursor"] == str(first.json()["id"])
            after = await api.get("/api/reservations",
                                  params={"limit": 1, "cursor": page.headers["X-Next-Cursor"]})
            assert after.json() == []


BUSY = ArrivalConfig(first_share=0.0, sessions_per_day=2 * 86_400.0, daily_profile=(1.0,) * 24,
                     dwell_mean_s=1.0, dwell_min_s=0.5, dwell_max_s=1.5)
"""A car about every half second on each EVSE, staying about a second."""


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_fleets_own_drivers_keep_off_a_reserved_evse(tmp_path: Path, version: OcppVersion) -> None:
    station = sid(version, "RES-BUSY")
    async with reservations_csms(tmp_path) as (app, api):
        await _tags(api)
        cp = charger(app.ocpp_url, version, station, evses=2)
        cp.arrivals = BUSY
        async with charging(cp):
            await wait_until(lambda: online(api, station), what="the station online")

            async def reserved() -> dict[str, Any] | None:
                r = await api.post("/api/reservations", json=_body(version, station, in_s(60), tag=OTHER))
                return r.json() if r.status_code == 201 else None  # Occupied while a car is there

            rid = (await wait_until(reserved, what="EVSE 1 reserved between two cars"))["id"]
            since = len([t for t in await _txs(api, station) if t["evse_id"] == 1])
            await wait_until(lambda: status_is(api, station, "Reserved"), what="EVSE 1 Reserved")

            async def others_charged() -> bool:
                return len([t for t in await _txs(api, station) if t["evse_id"] == 2]) >= 3

            await wait_until(others_charged, what="three sessions on EVSE 2", timeout=20)
            assert len([t for t in await _txs(api, station) if t["evse_id"] == 1]) == since
            assert await connector_status(api, station) == "Reserved"
            assert (await _reservation(api, rid))["status"] == "active"


async def _txs(api: httpx.AsyncClient, station: str) -> list[dict[str, Any]]:
    txs: list[dict[str, Any]] = (await api.get("/api/transactions", params={"charger_id": station})).json()
    return txs


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_reservation_of_any_evse_holds_a_free_one_and_clashes_with_the_others(
    tmp_path: Path, version: OcppVersion
) -> None:
    station = sid(version, "RES-ANY")
    async with (reservations_csms(tmp_path) as (app, api),
                charging(charger(app.ocpp_url, version, station, evses=2)) as cp):
        await wait_until(lambda: online(api, station), what="the station online")
        body = {"charger_id": station, "id_tag": TAG, "expires_at": in_s(60)}  # no evse_id, no connector_id
        created = await api.post("/api/reservations", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["evse_id"] == 0
        await wait_until(lambda: status_is(api, station, "Reserved"), what="a free EVSE Reserved")
        assert [h.evse_id for h in cp.reservations.held.values()] == [1]
        clash = await api.post("/api/reservations", json=dict(body, evse_id=2))
        assert clash.status_code == 409 and clash.json()["error"] == "reservation_clash"
        assert str(created.json()["id"]) in clash.json()["detail"]
