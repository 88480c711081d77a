"""The meter under charging profiles, and the outbox: pure, no network."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from simulators import metering
from simulators.ev import EVConfig, EVState, SupplyKind
from simulators.link import CallFailed, LinkClosed
from simulators.model import EvseSpec, EvseState, Tx
from simulators.outbox import Outbox, Outgoing
from simulators.profiles import ProfileSet

NOW = datetime(2025, 6, 2, 18, 0, tzinfo=UTC)
CAR = EVConfig(battery_capacity_kwh=60, initial_soc_percent=20, max_ac_current_a=32, max_dc_power_kw=150)


def _charging(spec: EvseSpec) -> EvseState:
    evse = EvseState(1, spec, spec.supply(), register_wh=1000.0)
    evse.ev = EVState.arrive(CAR)
    evse.tx = Tx("tx-1", 1, "TAG", NOW, 1000.0, NOW)
    return evse


def _limit(profiles: ProfileSet, limit_a: float, purpose: str = "TxDefaultProfile") -> ProfileSet:
    profiles.install({
        "id": 1, "stackLevel": 0, "chargingProfilePurpose": purpose, "chargingProfileKind": "Relative",
        "chargingSchedule": [{"id": 1, "chargingRateUnit": "A",
                              "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_a}]}],
    }, 1)
    return profiles


def test_ac_meter_shows_at_most_the_profile_limit_per_phase() -> None:
    evse = _charging(EvseSpec())
    limit = metering.grid_limit_a(evse, _limit(ProfileSet(), 10.0), NOW, "tx-1")
    sample = metering.sample(evse, NOW, limit)
    assert limit == 10.0
    assert sample.current_a == pytest.approx((10.0, 10.0, 10.0))
    assert sample.offered_a == 10.0
    assert sample.power_w == pytest.approx(10.0 * 3 * 230.0)


def test_without_profiles_the_ev_draws_up_to_the_evse_rating() -> None:
    evse = _charging(EvseSpec(max_current_a=16.0))
    assert metering.grid_limit_a(evse, ProfileSet(), NOW, "tx-1") is None
    assert metering.sample(evse, NOW, None).current_a == pytest.approx((16.0, 16.0, 16.0))


def test_dc_limit_is_grid_current_on_three_phases() -> None:
    evse = _charging(EvseSpec(SupplyKind.DC, max_power_w=150_000.0))
    assert metering.ev_limit_a(evse, 50.0) == pytest.approx(50.0 * 3 * 230.0 / 400.0)
    sample = metering.sample(evse, NOW, 50.0)
    assert sample.power_w == pytest.approx(50.0 * 3 * 230.0)
    assert sample.current_a == pytest.approx((50.0, 50.0, 50.0))
    assert sample.phases == 3
    assert evse.spec.rated_current_a == pytest.approx(150_000.0 / 690.0)


def test_settle_adds_the_energy_of_the_elapsed_time_to_the_register() -> None:
    evse = _charging(EvseSpec())
    energy = metering.settle(evse, 3600.0, 10.0)  # one hour at 10 A x 3 x 230 V
    assert energy == pytest.approx(6900.0, rel=1e-3)
    assert evse.register_wh == pytest.approx(1000.0 + energy)
    assert metering.settle(evse, 3600.0, 10.0) == 0.0  # no time passed


class _FakeLink:
    """Answers calls from a script: a payload, or an exception to raise."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.sent.append((action, payload))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_outbox_keeps_transaction_messages_across_a_disconnect_and_drops_the_rest() -> None:
    outbox = Outbox()
    waiter: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
    assert outbox.put(Outgoing("Authorize", dict, waiter=waiter), online=True)
    assert outbox.put(Outgoing("StopTransaction", lambda: {"transactionId": 7}, transactional=True),
                      online=True)
    assert not outbox.put(Outgoing("StatusNotification", dict), online=False)
    outbox.drop_stale()
    assert waiter.result() is None
    assert len(outbox) == outbox.transactional() == 1
    link = _FakeLink(LinkClosed("StopTransaction"), {})
    with pytest.raises(LinkClosed):
        await outbox.send_next(link)  # type: ignore[arg-type]
    assert len(outbox) == 1  # still queued for the next connection
    await outbox.send_next(link)  # type: ignore[arg-type]
    assert len(outbox) == 0
    assert link.sent == [("StopTransaction", {"transactionId": 7})] * 2


async def test_outbox_retries_a_timed_out_transaction_message_then_gives_up() -> None:
    outbox = Outbox(attempts=2)
    answers: list[dict[str, Any]] = []
    outbox.put(Outgoing("StartTransaction", dict, transactional=True, on_answer=answers.append), online=True)
    link = _FakeLink(CallFailed("timeout"), CallFailed("timeout"))
    await outbox.send_next(link)  # type: ignore[arg-type]
    assert len(outbox) == 1
    await outbox.send_next(link)  # type: ignore[arg-type]
    assert len(outbox) == 0 and answers == []


async def test_outbox_builds_payloads_when_sent() -> None:
    tx = Tx("local", 1, "TAG", NOW, 0.0, NOW)
    outbox = Outbox()
    entry = Outgoing("MeterValues", lambda: {"transactionId": tx.csms_id}, transactional=True)
    outbox.put(entry, online=False)
    tx.csms_id = 42  # the StartTransaction answer arrived meanwhile
    link = _FakeLink({})
    await outbox.send_next(link)  # type: ignore[arg-type]
    assert link.sent == [("MeterValues", {"transactionId": 42})]
