"""OCPP-J RPC framing, sans I/O: parse frames, build frames, name error codes per version.

A frame is a JSON array: ``[2, id, action, payload]`` (CALL), ``[3, id, payload]``
(CALLRESULT) or ``[4, id, code, description, details]`` (CALLERROR). ``parse``
turns text into one of the three dataclasses or raises ``FrameError`` carrying
the CALLERROR the peer must receive (or ``None`` when the spec says to ignore it).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from ocppj.versions import OcppVersion

CALL = 2
CALLRESULT = 3
CALLERROR = 4
MAX_ID_LENGTH = 36
# The message id of a CALL, read from the head of a frame the JSON parser refused (bounded: no recursion).
# JSON whitespace only, and an id of printable ASCII without '"' or '\\' (what a station can send)
_CALL_HEAD = re.compile(r'[ \t\r\n]*\[[ \t\r\n]*2[ \t\r\n]*,[ \t\r\n]*"([\x20\x21\x23-\x5b\x5d-\x7e]{1,36})"')
_HEAD_CHARS = 128


class ErrorKind(enum.Enum):
    """Version-neutral error kinds; ``code_for`` spells them for a version."""

    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    INTERNAL = "InternalError"
    PROTOCOL = "ProtocolError"
    SECURITY = "SecurityError"
    FORMAT = "FormatViolation"
    PROPERTY = "PropertyConstraintViolation"
    OCCURRENCE = "OccurrenceConstraintViolation"
    TYPE = "TypeConstraintViolation"
    GENERIC = "GenericError"
    RPC_FRAMEWORK = "RpcFrameworkError"
    MESSAGE_TYPE = "MessageTypeNotSupported"


_V16_SPELLING = {
    ErrorKind.FORMAT: "FormationViolation",
    ErrorKind.OCCURRENCE: "OccurenceConstraintViolation",  # sic, OCPP 1.6
    ErrorKind.RPC_FRAMEWORK: "ProtocolError",
    ErrorKind.MESSAGE_TYPE: "ProtocolError",
}


def code_for(kind: ErrorKind, version: OcppVersion) -> str:
    """The error code string for ``kind`` in ``version``."""
    if version is OcppVersion.V16:
        return _V16_SPELLING.get(kind, kind.value)
    return kind.value


@dataclass(slots=True)
class Call:
    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(slots=True)
class CallResult:
    unique_id: str
    payload: dict[str, Any]


@dataclass(slots=True)
class CallError:
    unique_id: str
    code: str
    description: str
    details: dict[str, Any] = field(default_factory=dict)


Frame = Call | CallResult | CallError


class FrameError(Exception):
    """A frame that cannot be processed; ``reply`` is the CALLERROR to send, if any."""

    def __init__(self, reply: CallError | None, reason: str) -> None:
        super().__init__(reason)
        self.reply = reply
        self.reason = reason


def _error(version: OcppVersion, uid: str, kind: ErrorKind, text: str) -> CallError:
    return CallError(uid, code_for(kind, version), text, {})


def parse(raw: str | bytes, version: OcppVersion) -> Frame:
    """Parse one WebSocket text frame. Raises ``FrameError`` for anything malformed."""
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _unparsed(raw, version, str(exc)) from exc
    if not isinstance(msg, list) or len(msg) < 3:
        uid = msg[1] if isinstance(msg, list) and len(msg) > 1 and _valid_id(msg[1]) else "-1"
        raise FrameError(
            _error(version, uid, ErrorKind.RPC_FRAMEWORK, "Frame is not an OCPP-J message array"),
            "not an rpc array",
        )
    mtype, uid = msg[0], msg[1]
    if not _valid_id(uid):
        raise FrameError(
            _error(version, "-1", ErrorKind.RPC_FRAMEWORK, "Message id missing, not a string or too long"),
            "bad message id",
        )
    if mtype == CALL:
        if len(msg) != 4:
            raise FrameError(
                _error(version, uid, ErrorKind.RPC_FRAMEWORK, "CALL must have 4 elements"),
                "bad call length",
            )
        action, payload = msg[2], msg[3]
        if not isinstance(action, str) or not action:
            raise FrameError(
                _error(version, uid, ErrorKind.RPC_FRAMEWORK, "Action must be a non-empty string"),
                "bad action",
            )
        if not isinstance(payload, dict):
            raise FrameError(
                _error(version, uid, ErrorKind.FORMAT, "Payload must be a JSON object"),
                "payload not an object",
            )
        return Call(uid, action, payload)
    if mtype == CALLRESULT:
        payload = msg[2]
        if len(msg) != 3 or not isinstance(payload, dict):
            raise FrameError(None, "malformed CALLRESULT")
        return CallResult(uid, payload)
    if mtype == CALLERROR:
        if len(msg) < 4:
            raise FrameError(None, "malformed CALLERROR")
        details = msg[4] if len(msg) > 4 and isinstance(msg[4], dict) else {}
        return CallError(uid, str(msg[2]), str(msg[3]), details)
    if version is OcppVersion.V16:
        raise FrameError(None, f"unknown message type {mtype!r} ignored")
    raise FrameError(
        _error(version, uid, ErrorKind.MESSAGE_TYPE, f"Message type {mtype!r} is not supported"),
        "unknown message type",
    )


def _unparsed(raw: str | bytes, version: OcppVersion, why: str) -> FrameError:
    """The error for a frame the JSON parser refused, answered with the CALL's own id when its head has one.

    Valid JSON beyond the parser's limits keeps its id and gets a payload error: nesting deeper
    than the depth limit is a FormatViolation, a number no double can hold a TypeConstraintViolation.
    """
    head = raw[:_HEAD_CHARS]
    text = head.decode("latin-1") if isinstance(head, bytes) else head  # a char per byte: no non-ASCII id
    found = _CALL_HEAD.match(text)
    uid = found.group(1) if found else "-1"
    if found and "depth limit" in why:
        return FrameError(
            _error(version, uid, ErrorKind.FORMAT, "Frame nests deeper than allowed"), "too deep"
        )
    if found and "number is infinity" in why:
        return FrameError(
            _error(version, uid, ErrorKind.TYPE, "Number out of range in payload"), "number out of range"
        )
    kind = ErrorKind.RPC_FRAMEWORK if version is OcppVersion.V201 else ErrorKind.FORMAT
    return FrameError(_error(version, uid, kind, "Frame is not valid JSON"), "invalid json")


def _valid_id(uid: object) -> bool:
    return isinstance(uid, str) and 0 < len(uid) <= MAX_ID_LENGTH


def encode_call(uid: str, action: str, payload: dict[str, Any]) -> bytes:
    """A CALL as UTF-8 JSON, ready for a text frame (``dump_*`` give the same as ``str``)."""
    return orjson.dumps([CALL, uid, action, payload])


def encode_result(uid: str, payload: dict[str, Any]) -> bytes:
    return orjson.dumps([CALLRESULT, uid, payload])


def encode_error(err: CallError) -> bytes:
    return orjson.dumps([CALLERROR, err.unique_id, err.code, err.description, err.details])


def dump_call(uid: str, action: str, payload: dict[str, Any]) -> str:
    return orjson.dumps([CALL, uid, action, payload]).decode()


def dump_result(uid: str, payload: dict[str, Any]) -> str:
    return orjson.dumps([CALLRESULT, uid, payload]).decode()


def dump_error(err: CallError) -> str:
    return orjson.dumps([CALLERROR, err.unique_id, err.code, err.description, err.details]).decode()
