"""Device report records and the keys their variables are kept under."""

from __future__ import annotations

import pytest

from csms.core.device_report import Attribute, Component, ReportedVariable, Variable, entries, variable_name


@pytest.mark.parametrize(("component", "variable", "key"), [
    (Component("Ctrlr"), Variable("V"), "Ctrlr/V"),
    (Component("Ctrlr", "x"), Variable("V", "y"), "Ctrlr(x)/V(y)"),
    (Component("EVSE", evse_id=1), Variable("Power"), "EVSE[1]/Power"),
    (Component("Connector", evse_id=2, connector_id=1), Variable("Type"), "Connector[2.1]/Type"),
    (Component("A/B[1]"), Variable("C(D)"), "A%2FB%5B1%5D/C%28D%29"),
    (Component("Ctrlr", ""), Variable("V", ""), "Ctrlr/V"),  # an empty instance is no instance
], ids=["plain", "instances", "evse", "evse and connector", "structure escaped", "empty instances"])
def test_variable_name(component: Component, variable: Variable, key: str) -> None:
    assert variable_name(component, variable) == key


def test_entries_are_one_per_attribute_with_a_value() -> None:
    report = [
        ReportedVariable(Component("EVSE", evse_id=1), Variable("Power"),
                         (Attribute("MaxSet", "22000"), Attribute("Actual", "0"), Attribute("Target"))),
        ReportedVariable(Component("C"), Variable("Nul"), (Attribute(value="a\x00b"),)),
        ReportedVariable(Component("C"), Variable("Nothing")),
    ]
    assert list(entries(report)) == [
        ("EVSE[1]/Power/MaxSet", "22000"), ("EVSE[1]/Power/Actual", "0"), ("C/Nul/Actual", "a\ufffdb"),
    ]
