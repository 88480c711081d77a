"""OCPP-J framing, sans I/O."""

from __future__ import annotations

import pytest

from ocppj import framing
from ocppj.framing import ErrorKind, code_for
from ocppj.versions import OcppVersion

V16, V201 = OcppVersion.V16, OcppVersion.V201


def test_call_is_parsed_into_id_action_payload() -> None:
    frame = framing.parse('[2,"42","Heartbeat",{}]', V16)
    assert frame == framing.Call("42", "Heartbeat", {})


def test_callresult_and_callerror_are_parsed() -> None:
    assert framing.parse('[3,"a",{"x":1}]', V201) == framing.CallResult("a", {"x": 1})
    assert framing.parse('[4,"b","NotImplemented","no",{}]', V201) == framing.CallError(
        "b", "NotImplemented", "no", {}
    )


@pytest.mark.parametrize(
    ("kind", "v16", "v201"),
    [
        (ErrorKind.FORMAT, "FormationViolation", "FormatViolation"),
        (ErrorKind.OCCURRENCE, "OccurenceConstraintViolation", "OccurrenceConstraintViolation"),
        (ErrorKind.TYPE, "TypeConstraintViolation", "TypeConstraintViolation"),
        (ErrorKind.RPC_FRAMEWORK, "ProtocolError", "RpcFrameworkError"),
    ],
)
def test_error_codes_are_spelled_per_version(kind: ErrorKind, v16: str, v201: str) -> None:
    assert code_for(kind, V16) == v16 and code_for(kind, V201) == v201


def test_unknown_message_type_is_ignored_in_16_and_refused_in_201() -> None:
    with pytest.raises(framing.FrameError) as e16:
        framing.parse('[7,"x",{}]', V16)
    assert e16.value.reply is None
    with pytest.raises(framing.FrameError) as e201:
        framing.parse('[7,"x",{}]', V201)
    assert e201.value.reply is not None and e201.value.reply.code == "MessageTypeNotSupported"


@pytest.mark.parametrize(
    "raw", ['[2,5,"Heartbeat",{}]', '[2,"","Heartbeat",{}]', '[2,"' + "i" * 37 + '","A",{}]']
)
def test_unreadable_message_id_is_answered_with_minus_one(raw: str) -> None:
    with pytest.raises(framing.FrameError) as err:
        framing.parse(raw, V201)
    assert err.value.reply is not None and err.value.reply.unique_id == "-1"


def test_frames_round_trip_through_dump_and_parse() -> None:
    assert framing.parse(framing.dump_call("1", "A", {"k": "v"}), V16) == framing.Call("1", "A", {"k": "v"})
    assert framing.parse(framing.dump_result("2", {}), V16) == framing.CallResult("2", {})
    err = framing.CallError("3", "GenericError", "x", {"d": 1})
    assert framing.parse(framing.dump_error(err), V16) == err


@pytest.mark.parametrize("raw", ["[1e999999]", '{"a":' * 600 + "1" + "}" * 600, b"\xff\xfe", "NaN", "[NaN]"])
def test_hostile_json_is_a_frame_error_not_a_crash(raw: str | bytes) -> None:
    with pytest.raises(framing.FrameError):
        framing.parse(raw, V201)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ('[2,"deep","DataTransfer",{"data":' + "[" * 5000 + "]" * 5000 + "}]", framing.ErrorKind.FORMAT),
        ('[2, "huge", "Heartbeat", {"n":' + "1" * 5000 + "}]", framing.ErrorKind.TYPE),
    ],
)
def test_valid_json_beyond_the_parser_limits_keeps_its_message_id(raw: str, kind: framing.ErrorKind) -> None:
    for version in (V16, V201):
        with pytest.raises(framing.FrameError) as err:
            framing.parse(raw, version)
        reply = err.value.reply
        assert reply is not None and reply.unique_id in ("deep", "huge")
        assert reply.code == framing.code_for(kind, version)


def test_invalid_json_with_a_readable_call_head_is_answered_with_that_id() -> None:
    with pytest.raises(framing.FrameError) as err:
        framing.parse(b'[2,"cut","Heartbeat",{', V201)
    assert err.value.reply == framing.CallError("cut", "RpcFrameworkError", "Frame is not valid JSON", {})
