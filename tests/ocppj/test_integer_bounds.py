"""32-bit integer bounds compiled into the schemas (``ocppj.integers.bound_integers``)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import ocpp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csms.ocpp.v16.handlers import HANDLERS as V16_HANDLERS
from csms.ocpp.v201.handlers import HANDLERS as V201_HANDLERS
from ocppj import schemas
from ocppj.framing import ErrorKind
from ocppj.integers import FIELD_RANGES, INT32, bound_integers
from ocppj.versions import OcppVersion
from tests.schema_payloads import request_schema, valid_requests

V16, V201 = OcppVersion.V16, OcppVersion.V201
LOW, HIGH = INT32
TS = "2026-01-01T00:00:00Z"


def test_integer_nodes_get_their_range_unless_their_own_is_tighter() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "plain": {"type": "integer"},
            "tight": {"type": "integer", "minimum": 0, "maximum": 100},
            "loose": {"type": "integer", "minimum": -1e12, "maximum": 1e12},
            "flagged": {"type": "integer", "maximum": 2**40, "exclusiveMaximum": True},
            "list": {"type": "array", "items": {"type": "integer"}},
            "meterStart": {"type": "integer"},
            "unit": {"$ref": "#/definitions/UnitType"},
            "type": {"type": "string"},  # a property named "type" is not a keyword
            "either": {"anyOf": [{"type": ["integer", "null"]}, {"type": "string"}]},
        },
        "definitions": {"UnitType": {"type": "object", "properties": {"multiplier": {"type": "integer"}}}},
    }
    added = bound_integers(schema)
    props = schema["properties"]
    assert (props["plain"]["minimum"], props["plain"]["maximum"]) == (LOW, HIGH)
    assert (props["tight"]["minimum"], props["tight"]["maximum"]) == (0, 100)
    assert (props["loose"]["minimum"], props["loose"]["maximum"]) == (LOW, HIGH)
    assert props["flagged"]["maximum"] == HIGH and "exclusiveMaximum" not in props["flagged"]
    assert (props["list"]["items"]["minimum"], props["meterStart"]["maximum"]) == (LOW, 2**53)
    assert schema["definitions"]["UnitType"]["properties"]["multiplier"]["maximum"] == 20
    assert props["type"] == {"type": "string"}
    assert props["either"]["anyOf"][0]["maximum"] == HIGH and "maximum" not in props["either"]["anyOf"][1]
    assert ("properties", "plain", "maximum") in added and ("properties", "loose", "minimum") in added
    assert ("properties", "list", "items", "minimum") in added
    assert ("definitions", "UnitType", "properties", "multiplier", "minimum") in added
    assert ("properties", "either", "anyOf", "0", "maximum") in added
    assert not {p for p in added if p[1] == "tight"}


def _multiplier(value: Any) -> dict[str, Any]:
    return {"evseId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [
        {"value": 1, "unitOfMeasure": {"multiplier": value}}]}]}


STATUS = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
START = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": TS}
MULTIPLIER = "integer out of range at /meterValue/0/sampledValue/0/unitOfMeasure/multiplier"
CONNECTOR = "integer out of range at /connectorId"
BIG_REGISTER = {"evseId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": 1.3e10}]}]}


@pytest.mark.parametrize(("version", "action", "payload", "expected"), [
    (V16, "StatusNotification", {**STATUS, "connectorId": 2**31}, CONNECTOR),
    (V16, "StatusNotification", {**STATUS, "connectorId": -(2**31) - 1}, CONNECTOR),
    (V16, "StatusNotification", {**STATUS, "connectorId": 2**64 - 1}, CONNECTOR),
    (V16, "StatusNotification", {**STATUS, "connectorId": 2**31 - 1}, None),
    (V16, "StartTransaction", {**START, "meterStart": 3 * 10**9}, None),  # a 3 GWh register is real
    (V16, "StartTransaction", {**START, "meterStart": 2**53}, None),
    (V16, "StartTransaction", {**START, "meterStart": 2**53 + 1}, "integer out of range at /meterStart"),
    (V201, "MeterValues", _multiplier(400), MULTIPLIER),
    (V201, "MeterValues", _multiplier(-21), MULTIPLIER),
    (V201, "MeterValues", _multiplier(20), None),
    (V201, "MeterValues", _multiplier(3.0), None),  # draft 6: an integral float is an integer
    (V201, "MeterValues", {**_multiplier(0), "evseId": 1e10}, "integer out of range at /evseId"),
    (V201, "MeterValues", BIG_REGISTER, None),  # a number, not an integer
])
def test_out_of_range_integers_are_type_violations(
    version: OcppVersion, action: str, payload: dict[str, Any], expected: str | None
) -> None:
    violation = schemas.validate(version, action, payload, response=False)
    if expected is None:
        assert violation is None
    else:
        assert violation is not None and violation.kind is ErrorKind.TYPE and violation.message == expected
        assert violation.path == expected.rsplit(" /", 1)[1]


def test_the_schemas_own_errors_come_first() -> None:
    both = {**STATUS, "connectorId": 2**40, "status": "Dancing"}
    violation = schemas.validate(V16, "StatusNotification", both, response=False)
    assert violation is not None and (violation.kind, violation.path) == (ErrorKind.PROPERTY, "status")
    not_integer = schemas.validate(V16, "StatusNotification", {**STATUS, "connectorId": 1e20}, response=False)
    assert not_integer is not None and not_integer.kind is ErrorKind.TYPE  # draft 4: 1e20 is no integer
    assert "out of range" not in not_integer.message


def test_tighter_schema_bounds_keep_their_property_violation() -> None:
    dc: dict[str, Any] = {"evMaxCurrent": 1, "evMaxVoltage": 1, "stateOfCharge": 101}
    needs = {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "DC", "dcChargingParameters": dc}}
    violation = schemas.validate(V201, "NotifyEVChargingNeeds", needs, response=False)
    assert violation is not None and violation.kind is ErrorKind.PROPERTY  # 0..100 of the schema itself
    dc |= {"stateOfCharge": 50, "evMaxCurrent": 2**31}
    violation = schemas.validate(V201, "NotifyEVChargingNeeds", needs, response=False)
    assert violation is not None and violation.kind is ErrorKind.TYPE
    assert violation.path == "chargingNeeds/dcChargingParameters/evMaxCurrent"


# --- the compiled bounds reject exactly what the former per-message walk rejected ------------

V201_SECURITY = {"SignCertificate", "Get15118EVCertificate", "GetCertificateStatus"}
ACTIONS = [(V16, a) for a in sorted({*V16_HANDLERS, "SignCertificate"})] + [
    (V201, a) for a in sorted({*V201_HANDLERS, *V201_SECURITY})
]
EDGES = [LOW, HIGH, LOW - 1, HIGH + 1, 2**53, 2**53 + 1, -(2**53) - 1, 20, 21, -20, -21, 2**64,
         1e10, 3.0, -0.0]


@functools.cache
def _unbounded(version: OcppVersion, action: str) -> Any:
    return jsonschema_rs.validator_for(request_schema(version, action))


def _with_edges(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with some integers swapped for values at and beyond the bounds."""
    if isinstance(value, dict):
        return {k: _with_edges(draw, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_edges(draw, v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and draw(st.booleans()):
        return draw(st.sampled_from(EDGES))
    return value


@st.composite
def _payloads(draw: st.DrawFn, version: OcppVersion, action: str) -> Any:
    return _with_edges(draw, draw(valid_requests(version, action)))


@pytest.mark.parametrize(("version", "action"), ACTIONS, ids=[f"{v.value}-{a}" for v, a in ACTIONS])
@settings(max_examples=10, deadline=None, database=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=st.data())
def test_compiled_bounds_agree_with_the_python_walk(
    version: OcppVersion, action: str, data: st.DataObject
) -> None:
    payload = data.draw(_payloads(version, action))
    got = schemas.validate(version, action, payload, response=False)
    if not _unbounded(version, action).is_valid(payload):
        first = next(iter(_unbounded(version, action).iter_errors(payload)))
        assert got is not None and got.message == first.message  # the schema's own error, as before
        return
    legacy = out_of_range(version, action, payload)
    if legacy is None:
        assert got is None
    else:
        assert got is not None and got.kind is ErrorKind.TYPE  # the field reported first may differ
        assert got.message.startswith("integer out of range at /")


# --- the former per-message walk (the integer module before the bounds moved into the
# compiled schemas), kept here as the oracle the compiled bounds are checked against ---------
ROOT = Path(ocpp.__file__).parent


@functools.cache
def _schema(version: OcppVersion, action: str) -> dict[str, Any] | None:
    if version is OcppVersion.V16:
        path = ROOT / "v16" / "schemas" / f"{action}.json"
    else:
        path = ROOT / "v201" / "schemas" / f"{action}Request.json"
    if not path.exists():
        return None
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        target = root.get("definitions", {}).get(ref.rsplit("/", 1)[1], {})
        return target if isinstance(target, dict) else {}
    return node


def _check(value: Any, node: dict[str, Any], root: dict[str, Any], path: str, name: str) -> str | None:
    node = _resolve(node, root)
    kind = node.get("type")
    if kind == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        low, high = FIELD_RANGES.get(name, INT32)
        if not low <= value <= high:
            return f"integer out of range at {path or '/'}"
    elif kind == "object" and isinstance(value, dict):
        props = node.get("properties", {})
        for key, item in value.items():
            sub = props.get(key)
            if isinstance(sub, dict):
                problem = _check(item, sub, root, f"{path}/{key}", key)
                if problem:
                    return problem
    elif kind == "array" and isinstance(value, list):
        items = node.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                problem = _check(item, items, root, f"{path}/{i}", name)
                if problem:
                    return problem
    return None


def _suspicious(payload: Any) -> bool:
    """Cheap pre-scan (a few microseconds per message): a number outside the 32-bit range, or a
    ``multiplier``? Only then is the payload walked along its schema."""
    low, high = INT32
    stack = [payload]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            if "multiplier" in item:
                return True
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif (kind is int or kind is float) and not low <= item <= high:
            return True
    return False


def out_of_range(version: OcppVersion, action: str, payload: dict[str, Any]) -> str | None:
    """Why ``payload`` has an integer no OCPP peer can hold, or None."""
    if not _suspicious(payload):
        return None
    schema = _schema(version, action)
    return None if schema is None else _check(payload, schema, schema, "", "")
