"""The official OCPP JSON schemas (shipped by the ``ocpp`` package), compiled with jsonschema-rs.

Validators compile lazily once per (version, action, direction) and validate in a few
microseconds. Schema failures map to the version's CALLERROR kind. Every integer is bounded
to 32 bits at compile time (``ocppj.integers.bound_integers``); breaking only such a
bound is a TypeConstraintViolation "integer out of range at /path", as OCPP integers are 32-bit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import ocpp

from ocppj.framing import ErrorKind
from ocppj.integers import bound_integers
from ocppj.versions import OcppVersion

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


def _schema(version: OcppVersion, action: str, response: bool) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(_file_for(version, action, response).read_text(encoding="utf-8"))
    schema.pop("$id", None)
    return schema


@cache
def _validator(version: OcppVersion, action: str, response: bool) -> Any:
    """The official schema with every integer bounded: what a payload must pass."""
    schema = _schema(version, action, response)
    bound_integers(schema)
    return jsonschema_rs.validator_for(schema)


@cache
def _official(version: OcppVersion, action: str, response: bool) -> Any:
    """The schema as shipped, compiled on the first invalid payload: whose error is it?"""
    return jsonschema_rs.validator_for(_schema(version, action, response))


def validate(
    version: OcppVersion, action: str, payload: dict[str, Any], *, response: bool
) -> SchemaViolation | None:
    """None when ``payload`` is valid for ``action``; else the first violation found.

    The official schema's own errors come first (as its first error); a payload only the
    added integer bounds reject is a TypeConstraintViolation "integer out of range at /path".
    """
    validator = _validator(version, action, response)
    if validator.is_valid(payload):
        return None
    official = _official(version, action, response)
    if official.is_valid(payload):
        path = _path(next(iter(validator.iter_errors(payload))))
        return SchemaViolation(ErrorKind.TYPE, f"integer out of range at /{path}", path)
    err = next(iter(official.iter_errors(payload)))
    kind = _KIND_BY_VALIDATOR.get(type(err.kind).__name__, ErrorKind.FORMAT)
    return SchemaViolation(kind, err.message, _path(err))


def checker(version: OcppVersion, action: str, *, response: bool) -> Callable[[Any], bool]:
    """The compiled validator's ``is_valid`` for the hot path; ``validate`` explains a failure."""
    check: Callable[[Any], bool] = _validator(version, action, response).is_valid
    return check


def _path(err: Any) -> str:
    return "/".join(str(p) for p in err.instance_path)


def warm(version: OcppVersion) -> None:
    """Compile every validator of ``version`` now (start-up), not on the first message."""
    for action in actions(version):
        _validator(version, action, False)
        _validator(version, action, True)
