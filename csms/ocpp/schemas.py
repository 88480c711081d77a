"""The official OCPP JSON schemas (shipped by the ``ocpp`` package), compiled with jsonschema-rs.

Validators compile lazily once per (version, action, direction) and validate in a few
microseconds. Schema failures map to the version's CALLERROR kind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import ocpp

from csms.core.model import OcppVersion
from csms.ocpp.rpc import ErrorKind

_SCHEMA_ROOT = Path(ocpp.__file__).parent

_KIND_BY_VALIDATOR = {
    "Required": ErrorKind.OCCURRENCE,
    "MinItems": ErrorKind.OCCURRENCE,
    "MaxItems": ErrorKind.OCCURRENCE,
    "Type": ErrorKind.TYPE,
    "AdditionalProperties": ErrorKind.FORMAT,
    "Enum": ErrorKind.PROPERTY,
    "Const": ErrorKind.PROPERTY,
    "MaxLength": ErrorKind.PROPERTY,
    "MinLength": ErrorKind.PROPERTY,
    "Maximum": ErrorKind.PROPERTY,
    "Minimum": ErrorKind.PROPERTY,
    "ExclusiveMaximum": ErrorKind.PROPERTY,
    "ExclusiveMinimum": ErrorKind.PROPERTY,
    "MultipleOf": ErrorKind.PROPERTY,
    "Pattern": ErrorKind.PROPERTY,
    "Format": ErrorKind.PROPERTY,
}


@dataclass(frozen=True, slots=True)
class SchemaViolation:
    """Why a payload failed its schema."""

    kind: ErrorKind
    message: str
    path: str


def _file_for(version: OcppVersion, action: str, response: bool) -> Path:
    if version is OcppVersion.V16:
        return _SCHEMA_ROOT / "v16" / "schemas" / f"{action}{'Response' if response else ''}.json"
    return _SCHEMA_ROOT / "v201" / "schemas" / f"{action}{'Response' if response else 'Request'}.json"


@cache
def actions(version: OcppVersion) -> frozenset[str]:
    """Every action the version defines (by the schema files present)."""
    folder = _file_for(version, "X", False).parent
    names: set[str] = set()
    for f in folder.glob("*.json"):
        stem = f.stem
        if stem.endswith("Response"):
            names.add(stem[: -len("Response")])
    return frozenset(names)


@cache
def _validator(version: OcppVersion, action: str, response: bool) -> Any:
    path = _file_for(version, action, response)
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema.pop("$id", None)
    return jsonschema_rs.validator_for(schema)


def validate(
    version: OcppVersion, action: str, payload: dict[str, Any], *, response: bool
) -> SchemaViolation | None:
    """None when ``payload`` is valid for ``action``; else the first violation found."""
    validator = _validator(version, action, response)
    if validator.is_valid(payload):
        return None
    err = next(iter(validator.iter_errors(payload)))
    kind = _KIND_BY_VALIDATOR.get(type(err.kind).__name__, ErrorKind.FORMAT)
    path = "/".join(str(p) for p in err.instance_path)
    return SchemaViolation(kind, err.message, path)


def warm(version: OcppVersion) -> None:
    """Compile every validator of ``version`` now (start-up), not on the first message."""
    for action in actions(version):
        _validator(version, action, False)
        _validator(version, action, True)
