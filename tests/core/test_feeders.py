"""Feeder loads: display rounding and the load event built from a typed load."""

from __future__ import annotations

import math

import pytest

from csms.core.events import FeederLoadChanged
from csms.core.feeders import ChargerLoad, FeederLoad, display_a


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, None), (0.1 + 0.2, 0.3), (31.999999999999996, 32.0), (-0.0, 0.0), (12.345, 12.35), (7, 7.0)],
)
def test_display_rounds_amperes_to_a_hundredth(value: float | None, shown: float | None) -> None:
    assert display_a(value) == shown


def test_display_never_shows_minus_zero() -> None:
    assert math.copysign(1.0, display_a(-0.0)) == 1.0
    assert math.copysign(1.0, display_a(-0.001)) == 1.0


def test_the_event_carries_the_load_unrounded_and_rounds_only_on_request() -> None:
    load = FeederLoad(
        node_id="F1", parent_id="T1", limit_a=None, available_a=None, measured_a=0.1 + 0.2,
        allocated_a=10.004, headroom_a=None, meter_stale=True,
        chargers=(ChargerLoad("CP1", 1, 10.0, "evse_max", 9.996, True),),
    )
    event = FeederLoadChanged.of(load)
    assert (event.measured_a, event.allocated_a, event.headroom_a) == (0.1 + 0.2, 10.004, None)
    assert event.evses == (("CP1", 1, 10.0),) and event.meter_stale and event.station_id == ""
    shown = event.rounded()
    assert (shown.measured_a, shown.allocated_a, shown.headroom_a, shown.limit_a) == (0.3, 10.0, None, None)
    assert (shown.event_id, shown.ts, shown.evses) == (event.event_id, event.ts, event.evses)
