"""What both dialects serve alike: dispatch, fixed answers, trigger targets, a remote start's profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from ocppj.framing import ErrorKind
from simulators.link import Refused, Served
from simulators.model import ChargerOps, EvseState
from simulators.profiles import ProfileRejected, Purpose
from simulators.serving import fixed, serve, start_profile, trigger_targets


@dataclass
class _Evses:
    """Just the EVSE table of a charger: all these helpers read."""

    evses: dict[int, EvseState] = field(default_factory=dict)


def _profile(purpose: str) -> dict[str, Any]:
    return {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": purpose,
            "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0,
                                                                                      "limit": 16.0}]}}


def _charger(*ids: int) -> ChargerOps:
    return cast(ChargerOps, _Evses({i: cast(EvseState, f"evse-{i}") for i in ids}))


def test_an_action_without_a_handler_is_refused_as_not_supported() -> None:
    with pytest.raises(Refused) as info:
        serve({}, _charger(1), "ReserveNow", {})
    assert info.value.kind is ErrorKind.NOT_SUPPORTED


def test_a_fixed_answer_is_a_fresh_copy_each_time() -> None:
    handlers = {"ClearCache": fixed({"status": "Accepted"})}
    first = serve(handlers, _charger(1), "ClearCache", {})
    first.payload["status"] = "changed"
    assert serve(handlers, _charger(1), "ClearCache", {}) == Served({"status": "Accepted"})


@pytest.mark.parametrize(("evse_id", "expected"), [
    (None, ["evse-1", "evse-2"]), (0, ["evse-1", "evse-2"]), (2, ["evse-2"]), (3, None),
])
def test_a_trigger_is_about_one_evse_or_all_and_an_unknown_evse_is_none(
    evse_id: int | None, expected: list[str] | None
) -> None:
    assert trigger_targets(_charger(1, 2), evse_id) == expected


def test_a_remote_start_carries_no_profile_or_a_tx_profile() -> None:
    assert start_profile({"idTag": "T"}) is None
    profile = start_profile({"chargingProfile": _profile("TxProfile")})
    assert profile is not None and profile.purpose is Purpose.TX
    with pytest.raises(ProfileRejected):
        start_profile({"chargingProfile": _profile("TxDefaultProfile")})


def test_an_unreadable_remote_start_profile_is_rejected() -> None:
    bad: dict[str, Any] = {"chargingProfile": {"chargingProfileId": "x"}}
    with pytest.raises(ProfileRejected):
        start_profile(bad)
