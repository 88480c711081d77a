"""The pure local-list rules: policies, desired entries, plans and the debounce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from csms.core.model import AuthStatus, IdTag
from csms.local_lists.rules import (
    Change,
    Debounce,
    Entry,
    Known,
    Limits,
    ListTooLong,
    Policy,
    Selection,
    UpdateType,
    apply,
    current,
    desired,
    digest,
    plan,
    selection,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIMITS = Limits(items_per_message=100)


def entries(n: int, prefix: str = "TAG") -> dict[str, Entry]:
    return {f"{prefix}{i:04d}": Entry(f"{prefix}{i:04d}", AuthStatus.ACCEPTED) for i in range(n)}


def test_group_policies_are_united_and_the_default_covers_the_rest() -> None:
    policies = {"": Policy("", "everyone"), "a": Policy("a", "fleet-a"), "b": Policy("b", "fleet-b")}
    assert selection(policies, ["a", "b"]) == Selection(False, frozenset({"fleet-a", "fleet-b"}))
    assert selection(policies, ["c"]) == Selection(False, frozenset({"everyone"}))
    assert selection({"a": Policy("a", None), "b": Policy("b", "x")}, ["a", "b"]) == Selection(True)
    assert selection({"a": Policy("a", None)}, ["c"]) is None


def test_desired_takes_the_selected_groups_and_drops_ids_the_protocol_cannot_carry() -> None:
    tags = [
        (IdTag("A1", AuthStatus.ACCEPTED, None, "P" * 21), "fleet-a"),
        (IdTag("B1", AuthStatus.BLOCKED), "fleet-b"),
        (IdTag("X" * 21), "fleet-a"),
        (IdTag("N1"), None),
    ]
    want = desired(tags, Selection(False, frozenset({"fleet-a"})), Limits(10, id_max_length=20))
    assert want == {"A1": Entry("A1", AuthStatus.ACCEPTED, None, None)}
    assert set(desired(tags, Selection(True), Limits(10, id_max_length=36))) == {"A1", "B1", "X" * 21, "N1"}


def test_first_sync_is_full_and_chunked_with_one_version_per_message() -> None:
    p = plan(None, entries(250), LIMITS)
    assert p.reason == "first" and p.update_type is UpdateType.FULL
    assert [(m.update_type, m.version, len(m.changes)) for m in p.messages] == [
        (UpdateType.FULL, 1, 100), (UpdateType.DIFFERENTIAL, 2, 100), (UpdateType.DIFFERENTIAL, 3, 50),
    ]
    have: dict[str, Entry] = {}
    for m in p.messages:
        have = apply(have, m)
    assert have == entries(250)


def test_a_few_changes_make_one_differential_update() -> None:
    have = entries(1000)
    want = dict(have)
    del want["TAG0001"]
    want["TAG0002"] = Entry("TAG0002", AuthStatus.BLOCKED)
    want["NEW"] = Entry("NEW", AuthStatus.ACCEPTED, T0)
    p = plan(Known(7, have, True), want, LIMITS)
    assert p.reason == "changes"
    assert [(m.update_type, m.version) for m in p.messages] == [(UpdateType.DIFFERENTIAL, 8)]
    assert p.messages[0].changes == (
        Change("NEW", want["NEW"]), Change("TAG0001", None), Change("TAG0002", want["TAG0002"]),
    )
    assert apply(have, p.messages[0]) == want


@pytest.mark.parametrize(("known", "station_version", "reason"), [
    (Known(3, entries(10), True), 2, "version_mismatch"),
    (Known(3, entries(10), False), None, "not_in_sync"),
    (Known(3, entries(10), True), None, "large_change"),
])
def test_full_update_after_a_mismatch_a_failure_or_a_large_change(
    known: Known, station_version: int | None, reason: str,
) -> None:
    want = entries(10, "OTHER") if reason == "large_change" else entries(10)
    p = plan(known, want, LIMITS, station_version=station_version)
    assert (p.reason, p.update_type, p.messages[0].version) == (reason, UpdateType.FULL, 4)


def test_nothing_to_send_when_up_to_date_and_too_long_lists_are_refused() -> None:
    assert plan(Known(3, entries(5), True), entries(5), LIMITS, station_version=3).messages == ()
    with pytest.raises(ListTooLong):
        plan(None, entries(11), Limits(100, max_entries=10))


def test_debounce_waits_for_quiet_but_not_forever() -> None:
    d = Debounce(2.0, 10.0)
    assert not d.due(T0)
    d = d.changed(T0).changed(T0 + timedelta(seconds=1.5))
    assert not d.due(T0 + timedelta(seconds=3.0))
    assert d.due(T0 + timedelta(seconds=3.5))
    for s in range(0, 12):
        d = d.changed(T0 + timedelta(seconds=s))
    assert d.due(T0 + timedelta(seconds=11))  # ten seconds after the first change of the stream
    assert not d.reset().due(T0 + timedelta(seconds=60))


def test_a_current_station_is_known_by_its_digest_and_version() -> None:
    have = entries(3)
    wanted = digest(dict(reversed(list(have.items()))))
    assert wanted == digest(have) and wanted != digest(entries(2))
    blocked = dict(have, TAG0000=Entry("TAG0000", AuthStatus.BLOCKED))
    assert digest(blocked) != wanted
    assert current(4, True, wanted, wanted) and current(4, True, wanted, wanted, station_version=4)
    assert not current(4, True, wanted, wanted, station_version=3)
    assert not current(4, False, wanted, wanted)
    assert not current(4, True, None, wanted)
    assert not current(4, True, wanted, wanted, force_full=True)
