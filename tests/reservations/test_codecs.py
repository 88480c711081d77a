"""The ReserveNow and CancelReservation payloads of both versions pass the official schemas."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from csms.ocpp.v16 import reservations as v16
from csms.ocpp.v201 import reservations as v201
from csms.reservations.rules import Reservation, Status
from ocppj import schemas
from ocppj.versions import OcppVersion

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _r(evse: int, connector_type: str | None = None) -> Reservation:
    return Reservation(12, "CP1", evse, "TAG1", T0, Status.PENDING, T0, connector_type)


@pytest.mark.parametrize("evse", [0, 2])
def test_1_6_reserve_now_names_the_connector_and_the_parent(evse: int) -> None:
    action, payload = v16.reserve_now(_r(evse), "FLEET")
    assert action == "ReserveNow"
    assert payload == {"connectorId": evse, "expiryDate": "2026-12-01T09:00:00.000Z", "idTag": "TAG1",
                       "reservationId": 12, "parentIdTag": "FLEET"}
    assert schemas.validate(OcppVersion.V16, action, payload, response=False) is None


def test_2_0_1_reserve_now_leaves_out_the_evse_for_any_and_carries_the_connector_type() -> None:
    action, payload = v201.reserve_now(_r(0, "cType2"))
    assert payload == {"id": 12, "expiryDateTime": "2026-12-01T09:00:00.000Z",
                       "idToken": {"idToken": "TAG1", "type": "Central"}, "connectorType": "cType2"}
    assert schemas.validate(OcppVersion.V201, action, payload, response=False) is None
    _, with_evse = v201.reserve_now(_r(3), "FLEET")
    assert with_evse["evseId"] == 3 and with_evse["groupIdToken"] == {"idToken": "FLEET", "type": "Central"}
    assert schemas.validate(OcppVersion.V201, action, with_evse, response=False) is None


@pytest.mark.parametrize(("version", "codec"), [(OcppVersion.V16, v16), (OcppVersion.V201, v201)])
def test_cancel_and_the_answers_read_back(version: OcppVersion, codec: object) -> None:
    action, payload = codec.cancel_reservation(12)  # type: ignore[attr-defined]
    assert (action, payload) == ("CancelReservation", {"reservationId": 12})
    assert schemas.validate(version, action, payload, response=False) is None
    assert codec.answer_status({"status": "Occupied"}) == "Occupied"  # type: ignore[attr-defined]


def test_a_2_0_1_status_update_is_read_or_refused() -> None:
    assert v201.status_update({"reservationId": 4, "reservationUpdateStatus": "Expired"}) == (4, "Expired")
    assert v201.status_update({"reservationId": "x"}) is None
    assert v201.status_update(None) is None
