"""OCPP integers are 32-bit signed (1.6 and 2.0.1 primitive types); JSON has no such bound.

The official schemas say only ``"type": "integer"``, and a valid-looking ``connectorId`` of
2**64 would otherwise travel into integer columns (SQLite: 64-bit, PostgreSQL: 32-bit) and
fail far from the station that sent it. ``bound_integers`` gives every integer node of a schema
``minimum``/``maximum`` before ``ocppj.schemas`` compiles it, so the validator rejects
such values (integral floats included: ``1e10`` is an integer in draft 6). Energy registers
the store keeps as floats (1.6 ``meterStart``/``meterStop``) may go up to 2**53 instead; a
2.0.1 unit ``multiplier`` (a power of ten) must stay within +-20, so no reading overflows a
double.
"""

from __future__ import annotations

import operator
from typing import Any

INT32 = (-(2**31), 2**31 - 1)
FIELD_RANGES = {"meterStart": (-(2**53), 2**53), "meterStop": (-(2**53), 2**53), "multiplier": (-20, 20)}

SchemaPath = tuple[str, ...]
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "definitions")  # name -> schema
_SUBSCHEMAS = ("items", "additionalItems", "additionalProperties", "not", "contains", "propertyNames",
               "if", "then", "else", "allOf", "anyOf", "oneOf")  # a schema or a list of schemas


def bound_integers(schema: dict[str, Any]) -> frozenset[SchemaPath]:
    """Bound every integer node of ``schema`` in place to its field's range (``FIELD_RANGES``, else
    32-bit) unless its own bound is tighter; the schema paths of the keywords set or replaced."""
    added: set[SchemaPath] = set()
    _bound(schema, (), "", added)
    return frozenset(added)


def _bound(node: Any, path: SchemaPath, name: str, added: set[SchemaPath]) -> None:
    """``name``: the property the node describes (array items inherit their array's)."""
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "integer" or (isinstance(kind, list) and "integer" in kind):
        _tighten(node, path, FIELD_RANGES.get(name, INT32), added)
    for key, sub in node.items():
        if key in _SUBSCHEMA_MAPS and isinstance(sub, dict):
            for child, item in sub.items():
                _bound(item, (*path, key, child), child if key == "properties" else "", added)
        elif key in _SUBSCHEMAS and isinstance(sub, list):
            for i, item in enumerate(sub):
                _bound(item, (*path, key, str(i)), name, added)
        elif key in _SUBSCHEMAS:
            _bound(sub, (*path, key), name, added)


def _tighten(node: dict[str, Any], path: SchemaPath, bounds: tuple[int, int], added: set[SchemaPath]) -> None:
    low, high = bounds
    for key, limit, stricter in (("minimum", low, operator.gt), ("maximum", high, operator.lt)):
        own = node.get(key)
        if isinstance(own, int | float) and stricter(own, limit):
            continue  # the schema's own bound is stricter: keep it (and its error kind)
        node[key] = limit
        exclusive = "exclusive" + key.capitalize()
        if isinstance(node.get(exclusive), bool):  # draft 4: a flag on the bound just replaced
            del node[exclusive]
        added.add((*path, key))
