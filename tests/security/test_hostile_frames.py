"""Hand-made hostile frames on a live connection: every CALL gets exactly one answer (or is
ignored where the spec says so), the connection keeps working, and nothing behind it breaks."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest
import websockets

from csms.app import CsmsApp
from tests.security.conftest import MakeCsms
from tests.security.peers import V16, V201, VERSIONS, call, connect, heartbeat_ok

DEEP_OK = 900  # below orjson's nesting limit (1024)
DEEP_BAD = 5000


def _frames(version: str) -> list[tuple[str | bytes, str | None]]:
    """(frame, expected answer id or None when it must be ignored)."""
    nested_ok = "[" * DEEP_OK + "]" * DEEP_OK
    data = nested_ok if version == V201 else json.dumps(nested_ok)
    boot_dup = ('{"chargePointVendor":"A","chargePointVendor":"B","chargePointModel":"M"}' if version == V16
                else '{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"A","vendorName":"B"}}')
    status = ('{"connectorId":%s,"errorCode":"NoError","status":"Available"}' if version == V16
              else '{"timestamp":"2026-01-01T00:00:00Z","connectorStatus":"Available","evseId":%s,'
                   '"connectorId":1}')
    return [
        ('[2,"deep1","DataTransfer",{"vendorId":"v","data":' + data + "}]", "deep1"),
        ("[" * DEEP_BAD + "]" * DEEP_BAD, "-1"),
        # JSON beyond the parser's limits, or invalid JSON with a readable CALL head: the frame's own id
        ('[2,"deep2","DataTransfer",{"vendorId":"v","data":%s}]' % ("[" * DEEP_BAD + "]" * DEEP_BAD),
         "deep2"),
        ('[2,"big1","StatusNotification",%s]' % (status % ("9" * 400)), "big1"),  # overflows a double
        ('[2,"big2","StatusNotification",%s]' % (status % str(2**64 - 1)), "big2"),
        ('[2,"big3","StatusNotification",%s]' % (status % str(2**70)), "big3"),
        ('[2,"big4","StatusNotification",%s]' % (status % "-1e308"), "big4"),
        ('[2,"nan1","Heartbeat",{"x":NaN}]', "nan1"),
        ('[2,"inf1","Heartbeat",{"x":Infinity}]', "inf1"),
        ("[2,\"sur1\",\"Heartbeat\",{\"x\":\"\\ud800\"}]", "sur1"),
        ('[2,"\\udfff","Heartbeat",{}]', "-1"),
        ('[2,"dup1","BootNotification",' + boot_dup + "]", "dup1"),
        (b'[2,"bin1","Heartbeat",{"x":"\xff\xfe"}]', "bin1"),  # invalid UTF-8 in a binary frame
        ('[3,"never-sent",{}]', None),
        ('[4,"never-sent","GenericError","",{}]', None),
        ('[3,"short"]', "short"),  # not an OCPP-J array: RpcFrameworkError/ProtocolError
        ('[2,"x","Heartbeat",{}, "extra"]', "x"),
        ('[2,"' + "i" * 36 + '","Heartbeat",{}]', "i" * 36),
        ("[]", "-1"),
        ("null", "-1"),
        ('"just a string"', "-1"),
        ('[2,"act1","' + "A" * 10_000 + '",{}]', "act1"),
    ]


async def _answer(ws: websockets.ClientConnection, timeout: float = 3) -> list[object] | None:
    try:
        return list(orjson.loads(await asyncio.wait_for(ws.recv(), timeout)))
    except TimeoutError:
        return None


@pytest.mark.parametrize("version", VERSIONS)
async def test_hostile_frames_are_answered_once_and_the_session_survives(
    make_csms: MakeCsms, version: str
) -> None:
    app = await make_csms(auto_register=True)
    async with connect(app.ocpp_url, "HOSTILE", version) as ws:
        for frame, expected in _frames(version):
            await ws.send(frame)
            if expected is not None:
                reply = await _answer(ws)
                assert reply is not None and reply[1] == expected, (str(frame)[:80], reply)
                assert reply[0] in (3, 4)
            hb = await call(ws, "Heartbeat", {})  # nothing else is pending, nothing was lost
            assert hb[0] == 3, (str(frame)[:80], hb)
        assert await _answer(ws, 0.3) is None  # no stray answers to the ignored frames
    await _assert_store_still_writes(app)


async def _assert_store_still_writes(app: CsmsApp) -> None:
    """The write-behind flush survived whatever the hostile frames put into memory."""
    assert app.service is not None and app.store is not None
    flush = next(t for t in app._tasks if t.get_name() == "store-flush")
    async with connect(app.ocpp_url, "NORMAL", V16) as ws:
        await call(ws, "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"})
    for _ in range(40):
        states = (await app.store.load_connectors()).get("NORMAL", [])
        if states:
            break
        await asyncio.sleep(0.1)
    assert not flush.done(), flush.exception() if flush.done() else None
    assert [s.status for s in states] == ["Charging"]


async def test_invalid_utf8_text_frame_closes_with_1007_and_others_are_served(make_csms: MakeCsms) -> None:
    app = await make_csms(auto_register=True)
    async with connect(app.ocpp_url, "UTF8", V201) as ws:
        await ws.send(b'[2,"u1","Heartbeat",{"x":"\xc3\x28"}]', text=True)
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1007
    async with connect(app.ocpp_url, "UTF8", V201) as ws:
        assert await heartbeat_ok(ws)


async def test_oversize_frame_closes_with_1009(make_csms: MakeCsms) -> None:
    app = await make_csms(auto_register=True, max_message_bytes=4096)
    async with connect(app.ocpp_url, "HUGE", V16, max_size=None) as ws:
        await ws.send('[2,"o1","DataTransfer",{"vendorId":"v","data":"' + "a" * 8192 + '"}]')
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


@pytest.mark.parametrize(("version", "action", "payload", "path"), [
    (V16, "StatusNotification", {"connectorId": 2**64 - 1, "errorCode": "NoError", "status": "Available"},
     "connectorId"),
    (V16, "StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 2**60,
                               "timestamp": "2026-01-01T00:00:00Z"}, "meterStart"),
    (V201, "StatusNotification", {"timestamp": "2026-01-01T00:00:00Z", "connectorStatus": "Available",
                                  "evseId": 1e10, "connectorId": 1}, "evseId"),
    (V201, "MeterValues", {"evseId": 1, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [
        {"value": 1.0, "unitOfMeasure": {"unit": "Wh", "multiplier": 400}}]}]},
     "meterValue/0/sampledValue/0/unitOfMeasure/multiplier"),
])
async def test_integers_beyond_32_bits_are_type_constraint_violations(
    make_csms: MakeCsms, version: str, action: str, payload: dict[str, object], path: str
) -> None:
    app = await make_csms(auto_register=True)
    async with connect(app.ocpp_url, "WIDE", version) as ws:
        reply = await call(ws, action, payload)
        assert reply[0] == 4 and reply[2] == "TypeConstraintViolation", reply
        assert reply[3] == f"integer out of range at /{path}"
        assert await heartbeat_ok(ws)
