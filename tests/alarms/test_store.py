"""The alarm tables on SQLite and on a private PostgreSQL: transitions, history, listing, paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from csms.core.alarms import AlarmKey, Kind, Severity, State, acknowledge
from csms.store.sql import SqlStore

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


async def test_raise_acknowledge_and_clear_are_stored_with_their_history(store: SqlStore) -> None:
    alarms = store.alarms
    raised = await alarms.raise_alarm(AlarmKey("CP1", Kind.CONNECTOR_FAULTED, "1/1"), Severity.MAJOR, "f", T0)
    assert await alarms.get_alarm(raised.id) == raised
    acked = await alarms.save_acknowledged(acknowledge(raised, T0 + timedelta(seconds=5), "operator"))
    assert acked is not None and acked.state is State.ACKNOWLEDGED and acked.acknowledged_by == "operator"
    again = await alarms.save_acknowledged(acknowledge(raised, T0 + timedelta(seconds=9), "other"))
    assert again == acked  # the first acknowledgement stands
    cleared = await alarms.clear_alarm(raised.id, T0 + timedelta(seconds=60))
    assert cleared is not None and cleared.state is State.CLEARED
    assert await alarms.clear_alarm(raised.id, T0 + timedelta(seconds=99)) == cleared
    assert await alarms.clear_alarm(12345, T0) is None
    history = await alarms.alarm_history(raised.id)
    assert [(h.action, h.at, h.actor) for h in history] == [
        (State.RAISED, T0, "csms"), (State.ACKNOWLEDGED, T0 + timedelta(seconds=5), "operator"),
        (State.CLEARED, T0 + timedelta(seconds=60), "csms"),
    ]


async def test_acknowledging_an_ack_only_alarm_clears_it(store: SqlStore) -> None:
    alarms = store.alarms
    raised = await alarms.raise_alarm(AlarmKey("CP1", Kind.COMMAND_UNANSWERED, "Reset"), Severity.WARNING,
                                      "Reset: timeout", T0)
    acked = await alarms.save_acknowledged(acknowledge(raised, T0 + timedelta(seconds=5), "operator"))
    assert acked is not None and acked.state is State.CLEARED
    assert await alarms.active_alarms() == []
    assert [h.action for h in await alarms.alarm_history(raised.id)] == [
        State.RAISED, State.ACKNOWLEDGED, State.CLEARED,
    ]


async def test_alarms_list_newest_first_by_charger_and_state_and_page_by_id(store: SqlStore) -> None:
    alarms = store.alarms
    made = [
        await alarms.raise_alarm(AlarmKey(f"CP{i % 2}", Kind.CLOCK_OFFSET), Severity.WARNING, "", T0)
        for i in range(5)
    ]
    await alarms.clear_alarm(made[0].id, T0)
    ids = [a.id for a in made]
    assert [a.id for a in await alarms.list_alarms(active=False)] == ids[::-1]
    assert [a.id for a in await alarms.list_alarms(active=True)] == ids[:0:-1]
    cp0 = await alarms.list_alarms(active=False, charger_id="CP0")
    assert [a.id for a in cp0] == [ids[4], ids[2], ids[0]]
    first = await alarms.list_alarms(active=False, limit=2)
    rest = await alarms.list_alarms(active=False, limit=10, before_id=first[-1].id)
    assert [a.id for a in first + rest] == ids[::-1]
    assert [a.id for a in await alarms.active_alarms()] == ids[1:]
