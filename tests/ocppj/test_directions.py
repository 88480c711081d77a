"""The station-initiated action sets name real actions and cover every action the CSMS serves."""

from __future__ import annotations

import pytest

from csms.ocpp.v16.handlers import HANDLERS as V16_HANDLERS
from csms.ocpp.v201.handlers import HANDLERS as V201_HANDLERS
from ocppj import schemas
from ocppj.directions import station_initiated
from ocppj.versions import OcppVersion


@pytest.mark.parametrize(
    ("version", "served"), [(OcppVersion.V16, V16_HANDLERS), (OcppVersion.V201, V201_HANDLERS)]
)
def test_station_initiated_actions_exist_and_include_every_served_action(
    version: OcppVersion, served: dict[str, object]
) -> None:
    initiated = station_initiated(version)
    assert initiated <= schemas.actions(version)
    assert set(served) - {"DataTransfer"} <= initiated
    assert "DataTransfer" not in initiated and "Reset" not in initiated
