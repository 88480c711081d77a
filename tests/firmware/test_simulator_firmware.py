"""The fleet's firmware options: scenario keys, which chargers get the faults, and a strict table."""

from __future__ import annotations

import pytest

from simulators.firmware import FirmwareFaults
from simulators.scenario import ScenarioError, parse_scenario


def _scenario(firmware: dict[str, object]) -> dict[str, object]:
    return {"fleet": {"chargers": 200, "id_prefix": "FW"}, "firmware": firmware}


def test_a_share_of_the_chargers_and_the_named_ones_get_the_firmware_fault() -> None:
    s = parse_scenario(_scenario({"step_s": 0.1, "max_bytes": 1000, "fault": "install", "fault_share": 0.1,
                                  "fault_first_attempt_only": True, "fault_stations": ["FW00200"]}))
    assert s.behaviour.firmware.step_s == 0.1 and s.behaviour.firmware.max_bytes == 1000
    specs = s.charger_specs()
    faulty = [c.station_id for c in specs if c.firmware_faults is not None]
    assert 8 <= len(faulty) <= 40 and "FW00200" in faulty
    by_id = {c.station_id: c for c in specs}
    assert by_id["FW00200"].firmware_faults == FirmwareFaults(install=True, first_attempt_only=True)
    assert faulty == [c.station_id for c in parse_scenario(_scenario({
        "fault": "install", "fault_share": 0.1, "fault_first_attempt_only": True,
        "fault_stations": ["FW00200"]})).charger_specs() if c.firmware_faults is not None]  # the seed decides


def test_without_a_fault_no_charger_gets_one() -> None:
    s = parse_scenario(_scenario({"fault_share": 1.0}))
    assert all(c.firmware_faults is None for c in s.charger_specs())


@pytest.mark.parametrize("firmware, needle", [
    ({"fault": "explode"}, "fault must be one of"),
    ({"fault_share": 2}, "fault_share"),
    ({"step_s": -1}, "step_s"),
    ({"colour": "red"}, "unknown key"),
])
def test_bad_firmware_options_are_refused(firmware: dict[str, object], needle: str) -> None:
    with pytest.raises(ScenarioError, match=needle):
        parse_scenario(_scenario(firmware))
