"""The pure rules: parsing, precedence, what to send, drift and status counts."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from csms.desired_config.rules import (
    DEFAULT,
    DesiredSet,
    DriftStatus,
    KeyResult,
    Reading,
    ResultStatus,
    drift,
    effective,
    parse_set,
    status_counts,
    to_send,
)
from ocppj.versions import OcppVersion

T0 = datetime(2026, 1, 1, tzinfo=UTC)
V16, V201 = OcppVersion.V16, OcppVersion.V201


def test_variable_keys_follow_the_device_report_format() -> None:
    s = parse_set("g", {"ocpp2.0.1": [
        {"component": "EVSE", "evse": 1, "connector": 2, "variable": "Power", "variable_instance": "x",
         "value": "1"},
        {"component": "Ctrl(a)", "component_instance": "i", "variable": "V", "attribute_type": "Target",
         "value": ""},
    ]})
    assert [v.key for v in s.variables] == ["EVSE[1.2]/Power(x)/Actual", "Ctrl%28a%29(i)/V/Target"]
    again = parse_set("g", s.body())
    assert again == s


@pytest.mark.parametrize(("body", "message"), [
    ([], "the body must be an object"),
    ({"ocpp1.6": {"A": 1}}, "ocpp1.6.A must be a string"),
    ({"ocpp1.6": {"A": "x" * 501}}, "longer than 500"),
    ({"ocpp1.6": ["A"]}, '"ocpp1.6" must be an object'),
    ({"ocpp2.0.1": {}}, '"ocpp2.0.1" must be a list'),
    ({"ocpp2.0.1": [{"component": "C", "variable": "V"}]}, "ocpp2.0.1[0].value is required"),
    ({"ocpp2.0.1": [{"component": "C", "variable": "V", "value": "1", "colour": "red"}]},
     "unknown fields colour"),
    ({"ocpp2.0.1": [{"component": "C", "variable": "V", "value": "1", "connector": 1}]}, "needs an evse"),
    ({"ocpp2.0.1": [{"component": "C", "variable": "V", "value": "1", "attribute_type": "Max"}]},
     "attribute_type must be one of"),
    ({"ocpp2.0.1": [{"component": "C", "variable": "V", "value": "1"}] * 2}, "C/V/Actual is given twice"),
    ({"priority": "high"}, "priority must be an integer"),
    ({"priority": True}, "priority must be an integer"),
    ({"extra": 1}, "unknown fields: extra"),
    ({"ocpp1.6": {f"K{i}": "v" for i in range(501)}}, "at most 500"),
    ({"ocpp1.6": {"authorizationKey": "00"}}, "authorizationKey is a station password"),
    ({"ocpp2.0.1": [{"component": "SecurityCtrlr", "variable": "BasicAuthPassword", "value": "x" * 16}]},
     "SecurityCtrlr/BasicAuthPassword/Actual is a station password"),
])
def test_bad_sets_are_refused_with_the_reason(body: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_set("g", body)


def test_group_names_are_checked_but_the_default_is_allowed() -> None:
    with pytest.raises(ValueError, match="group name"):
        parse_set("bad name", {})
    assert parse_set(DEFAULT, {}).group == DEFAULT


def _sets(*sets: DesiredSet) -> dict[str, DesiredSet]:
    return {s.group: s for s in sets}


def test_higher_priority_wins_over_lower_and_the_default() -> None:
    sets = _sets(
        DesiredSet(DEFAULT, 99, {"A": "d", "B": "d", "C": "d"}),
        DesiredSet("low", 1, {"A": "low", "B": "low"}),
        DesiredSet("high", 5, {"A": "high"}),
        DesiredSet("other", 50, {"A": "other"}),  # the station is not in it
    )
    got = effective(sets, ["high", "low"], V16)
    assert {k: (i.value, i.source) for k, i in got.items()} == {
        "A": ("high", "high"), "B": ("low", "low"), "C": ("d", DEFAULT)}


def test_equal_priorities_let_the_name_that_sorts_first_win() -> None:
    sets = _sets(DesiredSet("b", 1, {"A": "b"}), DesiredSet("a", 1, {"A": "a"}))
    assert effective(sets, ["b", "a"], V16)["A"].value == "a"
    assert effective(sets, ["a", "b"], V16)["A"].value == "a"


def test_a_version_gets_only_its_own_part() -> None:
    s = parse_set("g", {"ocpp1.6": {"A": "1"},
                        "ocpp2.0.1": [{"component": "C", "variable": "V", "value": "2"}]})
    assert list(effective({"g": s}, ["g"], V16)) == ["A"]
    assert list(effective({"g": s}, ["g"], V201)) == ["C/V/Actual"]


def test_boot_sends_everything_a_change_only_what_is_not_applied_with_its_value() -> None:
    values = {"A": "1", "B": "2", "C": "3", "D": "4", "E": "5"}
    desired = effective(_sets(DesiredSet("g", 0, values)), ["g"], V16)
    kept = {
        "A": KeyResult("A", "1", ResultStatus.ACCEPTED, T0),
        "B": KeyResult("B", "1", ResultStatus.ACCEPTED, T0),  # another value
        "C": KeyResult("C", "3", ResultStatus.REBOOT_REQUIRED, T0),
        "D": KeyResult("D", "4", ResultStatus.REJECTED, T0),
    }
    assert [i.key for i in to_send(desired, kept, at_boot=True)] == ["A", "B", "C", "D", "E"]
    assert [i.key for i in to_send(desired, kept, at_boot=False)] == ["B", "D", "E"]


def test_drift_compares_each_desired_key_with_the_reading() -> None:
    values = {"A": "1", "B": "true", "C": "x", "D": "y", "E": "z"}
    desired = effective(_sets(DesiredSet("g", 0, values)), ["g"], V16)
    readings = {"A": Reading("2"), "B": Reading("True"), "C": Reading(None, supported=False),
                "D": Reading(None)}
    last = KeyResult("A", "1", ResultStatus.ACCEPTED, T0)
    got = {e.key: (e.actual, e.status, e.last_result) for e in drift(desired, readings, {"A": last})}
    assert got == {
        "A": ("2", DriftStatus.DRIFTED, last), "B": ("True", DriftStatus.IN_SYNC, None),
        "C": (None, DriftStatus.NOT_SUPPORTED, None), "D": (None, DriftStatus.MISSING, None),
        "E": (None, DriftStatus.MISSING, None),
    }


def test_status_counts_read_only_the_kept_answers_for_the_current_values() -> None:
    desired = effective(_sets(DesiredSet("g", 0, {k: "1" for k in "ABCDEFG"})), ["g"], V16)
    kept = {
        "A": KeyResult("A", "1", ResultStatus.ACCEPTED, T0),
        "B": KeyResult("B", "1", ResultStatus.REBOOT_REQUIRED, T0),
        "C": KeyResult("C", "1", ResultStatus.REJECTED, T0),
        "D": KeyResult("D", "1", ResultStatus.UNKNOWN_VARIABLE, T0),
        "E": KeyResult("E", "1", ResultStatus.FAILED, T0),
        "F": KeyResult("F", "0", ResultStatus.ACCEPTED, T0),
    }
    assert status_counts(desired, kept) == {"applied": 1, "reboot_required": 1, "rejected": 1,
                                            "not_supported": 1, "failed": 1, "pending": 2}


def test_an_unknown_answer_word_counts_as_rejected() -> None:
    assert ResultStatus.of("Weird") is ResultStatus.REJECTED
    assert ResultStatus.of("RebootRequired") is ResultStatus.REBOOT_REQUIRED
