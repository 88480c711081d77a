"""OCPP integers are 32-bit signed (1.6 and 2.0.1 primitive types); JSON has no such bound.

The official schemas say only ``"type": "integer"``, and a valid-looking ``connectorId`` of
2**64 would otherwise travel into integer columns (SQLite: 64-bit, PostgreSQL: 32-bit) and
fail far from the station that sent it. ``IntegerGuard`` walks a payload along its schema
and reports the first integer field outside the 32-bit range (integral floats included,
since ``1e20`` validates as an integer). Energy registers the store keeps as floats
(1.6 ``meterStart``/``meterStop``) may go up to 2**53 instead; a 2.0.1 unit ``multiplier``
(a power of ten) must stay within +-20, so no reading overflows a double.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import ocpp

from csms.core.model import OcppVersion

INT32 = (-(2**31), 2**31 - 1)
FIELD_RANGES = {"meterStart": (-(2**53), 2**53), "meterStop": (-(2**53), 2**53), "multiplier": (-20, 20)}
_ROOT = Path(ocpp.__file__).parent


@cache
def _schema(version: OcppVersion, action: str) -> dict[str, Any] | None:
    if version is OcppVersion.V16:
        path = _ROOT / "v16" / "schemas" / f"{action}.json"
    else:
        path = _ROOT / "v201" / "schemas" / f"{action}Request.json"
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
