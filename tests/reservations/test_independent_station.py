"""Reservations with an independent 2.0.1 peer (the ``ocpp`` library): the station's own
ReservationStatusUpdate ends a reservation, and a CALLERROR to CancelReservation is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ocpp.exceptions import InternalError
from ocpp.routing import on
from ocpp.v201 import call
from ocpp.v201 import call_result as result

from tests.e2e.stations import Station201, connected
from tests.reservations.support import in_s, reservations_csms, wait_until

pytestmark = pytest.mark.e2e


class Reserving201(Station201):
    """Accepts every reservation; cancelling one fails with a CALLERROR."""

    @on("ReserveNow")
    async def on_reserve_now(self, id: int, expiry_date_time: str, id_token: dict[str, Any],
                             **kwargs: Any) -> result.ReserveNow:
        self.received.append(("ReserveNow", {"id": id, "id_token": id_token, **kwargs}))
        return result.ReserveNow(status="Accepted")

    @on("CancelReservation")
    async def on_cancel(self, reservation_id: int) -> result.CancelReservation:
        raise InternalError(description="reservation store busy")


async def test_the_stations_removal_ends_the_reservation_and_a_failed_cancel_keeps_it(tmp_path: Path) -> None:
    async with (reservations_csms(tmp_path) as (app, api),
                connected(Reserving201, app.ocpp_url, "RES-PEER", "ocpp2.0.1") as cp):
        await cp.call(call.BootNotification(charging_station={"vendor_name": "Acme", "model": "X"},
                                            reason="PowerUp"))
        body = {"charger_id": "RES-PEER", "evse_id": 2, "id_tag": "PEERTAG", "expires_at": in_s(600),
                "connector_type": "cType2"}
        created = await api.post("/api/reservations", json=body)
        assert created.status_code == 201, created.text
        rid = created.json()["id"]
        [(_, sent)] = cp.received
        assert sent["id"] == rid and sent["evse_id"] == 2 and sent["connector_type"] == "cType2"
        assert sent["id_token"] == {"id_token": "PEERTAG", "type": "Central"}

        failed = await api.delete(f"/api/reservations/{rid}")
        assert failed.status_code == 502 and failed.json()["code"] == "InternalError"
        kept = (await api.get(f"/api/reservations/{rid}")).json()
        assert (kept["status"], kept["cancel_answer"]) == ("active", "CallError:InternalError")

        await cp.call(call.ReservationStatusUpdate(reservation_id=rid, reservation_update_status="Removed"))

        async def removed() -> dict[str, Any] | None:
            r = (await api.get(f"/api/reservations/{rid}")).json()
            return r if r["status"] == "removed" else None

        reservation = await wait_until(removed, what="the reservation removed by the station")
        assert reservation["ended_at"] is not None
