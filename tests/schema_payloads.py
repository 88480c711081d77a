"""Payloads generated from the official OCPP request schemas (hypothesis-jsonschema), shared by
the fuzz and property tests."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import ocpp
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from ocppj.versions import OcppVersion

SCHEMAS = Path(ocpp.__file__).parent


def request_schema(version: OcppVersion | str, action: str) -> dict[str, Any]:
    """The request schema of ``action`` as shipped (without ``$id``; ``$schema`` kept)."""
    path = (SCHEMAS / "v16" / "schemas" / f"{action}.json" if OcppVersion(version) is OcppVersion.V16
            else SCHEMAS / "v201" / "schemas" / f"{action}Request.json")
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    schema.pop("$id", None)
    return schema


def few_items(node: Any) -> Any:
    """Arrays capped at two items (or their minimum) so deep schemas generate in CI time."""
    if isinstance(node, dict):
        if node.get("type") == "array":
            node["maxItems"] = max(min(node.get("maxItems", 2), 2), node.get("minItems", 0))
        for value in node.values():
            few_items(value)
    elif isinstance(node, list):
        for value in node:
            few_items(value)
    return node


@functools.cache
def valid_requests(version: OcppVersion | str, action: str) -> st.SearchStrategy[Any]:
    """Payloads the official request schema accepts."""
    schema = few_items(request_schema(version, action))
    schema.pop("$schema", None)
    return from_schema(schema)
