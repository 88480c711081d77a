"""Every malformed frame gets the version's CallError (or is ignored where the spec says so),
and the same connection then still serves a Heartbeat."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import websockets

from csms.app import CsmsApp
from tests.gateway.relay import csms_direct_or_via_gateway  # noqa: F401  (csms: direct and via a gateway)

HEARTBEAT = '[2,"hb-after","Heartbeat",{}]'
DEEP = "[" * 2000 + "]" * 2000  # valid JSON nested deeper than the parser's limit
HUGE = "9" * 5000  # a valid JSON integer no double can hold

# (frame, expected reply as (message id, error code)) per version; None = no reply (ignored)
CASES_16: list[tuple[str, tuple[str, str] | None]] = [
    ("this is not json", ("-1", "FormationViolation")),
    ("{\"an\": \"object\"}", ("-1", "ProtocolError")),
    ("[2]", ("-1", "ProtocolError")),
    ('[2,"m1"]', ("m1", "ProtocolError")),
    ('[2,"m2","Heartbeat"]', ("m2", "ProtocolError")),
    ('[2,"m3","Heartbeat",[]]', ("m3", "FormationViolation")),
    ('[2,"m4","NoSuchAction",{}]', ("m4", "NotImplemented")),
    ('[2,"m5","Reset",{"type":"Hard"}]', ("m5", "NotSupported")),  # CSMS->station action
    ('[2,"m6","BootNotification",{"chargePointVendor":"V"}]', ("m6", "OccurenceConstraintViolation")),
    ('[2,"m7","BootNotification",{"chargePointVendor":7,"chargePointModel":"M"}]',
     ("m7", "TypeConstraintViolation")),
    ('[2,"m8","BootNotification",{"chargePointVendor":"' + "V" * 21 + '","chargePointModel":"M"}]',
     ("m8", "PropertyConstraintViolation")),
    ('[2,"m9","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Dancing"}]',
     ("m9", "PropertyConstraintViolation")),
    ('[2,"m10","Heartbeat",{"extra":1}]', ("m10", "FormationViolation")),
    ('[2,"' + "x" * 37 + '","Heartbeat",{}]', ("-1", "ProtocolError")),
    ('[9,"m11","Heartbeat",{}]', None),  # unknown message type: ignored in 1.6
    ('[3,"never-sent",{}]', None),  # unsolicited CALLRESULT: ignored
    ('[2,"m12","StartTransaction",{"connectorId":"1","idTag":"T","meterStart":0,'
     '"timestamp":"2026-01-01T00:00:00Z"}]', ("m12", "TypeConstraintViolation")),
    ('[2,"m13","DataTransfer",{"vendorId":"v","data":' + DEEP + '}]', ("m13", "FormationViolation")),
    ('[2,"m14","MeterValues",{"connectorId":' + HUGE + ',"meterValue":[]}]',
     ("m14", "TypeConstraintViolation")),
]

CASES_201: list[tuple[str, tuple[str, str] | None]] = [
    ("this is not json", ("-1", "RpcFrameworkError")),
    ("[2]", ("-1", "RpcFrameworkError")),
    ('[2,"n1","Heartbeat"]', ("n1", "RpcFrameworkError")),
    ('[2,"n2","Heartbeat",7]', ("n2", "FormatViolation")),
    ('[2,"n3","NoSuchAction",{}]', ("n3", "NotImplemented")),
    ('[2,"n4","Reset",{"type":"Immediate"}]', ("n4", "NotSupported")),
    ('[2,"n5","BootNotification",{"reason":"PowerUp"}]', ("n5", "OccurrenceConstraintViolation")),
    ('[2,"n6","BootNotification",{"reason":"Bored","chargingStation":{"model":"m","vendorName":"v"}}]',
     ("n6", "PropertyConstraintViolation")),
    ('[2,"n7","Heartbeat",{"extra":true}]', ("n7", "FormatViolation")),
    ('[2,"n8","TransactionEvent",{"eventType":"Started","timestamp":"2026-01-01T00:00:00Z",'
     '"triggerReason":"Authorized","seqNo":"0","transactionInfo":{"transactionId":"T"}}]',
     ("n8", "TypeConstraintViolation")),
    ('[9,"n9","Heartbeat",{}]', ("n9", "MessageTypeNotSupported")),
    ('[3,"never-sent",{}]', None),
    ('[2,"' + "y" * 37 + '","Heartbeat",{}]', ("-1", "RpcFrameworkError")),
    ('[2,"n10","DataTransfer",{"vendorId":"v","data":' + DEEP + '}]', ("n10", "FormatViolation")),
    ('[2, "n11", "Heartbeat", {"x":' + HUGE + '}]', ("n11", "TypeConstraintViolation")),
]


async def _next_frame(ws: websockets.ClientConnection) -> list[object]:
    raw = await asyncio.wait_for(ws.recv(), 5)
    frame = orjson.loads(raw)
    assert isinstance(frame, list)
    return frame


@pytest.mark.parametrize(("subprotocol", "cases"), [("ocpp1.6", CASES_16), ("ocpp2.0.1", CASES_201)])
async def test_each_malformed_frame_gets_its_error_and_the_connection_keeps_working(
    csms: CsmsApp, subprotocol: str, cases: list[tuple[str, tuple[str, str] | None]]
) -> None:
    url = f"{csms.ocpp_url}/BAD-{subprotocol}"
    async with websockets.connect(url, subprotocols=[subprotocol]) as ws:  # type: ignore[list-item]
        for frame, expected in cases:
            await ws.send(frame)
            if expected is not None:
                reply = await _next_frame(ws)
                assert reply[0] == 4, (frame, reply)
                assert (reply[1], reply[2]) == expected, (frame, reply)
            await ws.send(HEARTBEAT)
            reply = await _next_frame(ws)
            assert reply[:2] == [3, "hb-after"], (frame, reply)


async def test_oversized_frame_closes_with_1009_and_server_keeps_serving(csms: CsmsApp) -> None:
    big = '[2,"big","DataTransfer",{"vendorId":"x","data":"' + "a" * (2 << 20) + '"}]'
    async with websockets.connect(f"{csms.ocpp_url}/BIG1", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                                  max_size=None) as ws:
        await ws.send(big)
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    async with websockets.connect(f"{csms.ocpp_url}/BIG2", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        await ws.send(HEARTBEAT)
        assert (await _next_frame(ws))[0] == 3


@pytest.mark.parametrize("offer", [[], ["ocpp1.5"], ["wamp"]])
async def test_handshake_without_a_supported_subprotocol_is_refused(csms: CsmsApp, offer: list[str]) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(f"{csms.ocpp_url}/SUBP", subprotocols=offer or None):  # type: ignore[arg-type]
            pass
    assert info.value.response.status_code == 400


async def test_client_offering_both_versions_gets_201(csms: CsmsApp) -> None:
    async with websockets.connect(f"{csms.ocpp_url}/BOTH",
                                  subprotocols=["ocpp1.6", "ocpp2.0.1"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "ocpp2.0.1"


@pytest.mark.parametrize("path", ["/ocpp/", "/other/CP1", "/ocpp/a/b", "/ocpp/" + "z" * 49, "/ocpp/bad%0Aid"])
async def test_bad_paths_and_station_ids_are_refused(csms: CsmsApp, path: str) -> None:
    url = csms.ocpp_url.rsplit("/ocpp", 1)[0] + path
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(url, subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
            pass
    assert info.value.response.status_code == 404


async def test_url_encoded_station_id_is_decoded(csms: CsmsApp) -> None:
    async with websockets.connect(f"{csms.ocpp_url}/CP%20Space", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        await ws.send(HEARTBEAT)
        await _next_frame(ws)
    assert "CP Space" in csms.service.live  # type: ignore[union-attr]


# unreadable timestamps: "yesterday" fails the schema's date-time check, a leap second passes it
# and is refused by the handler or the meter conversion; the same way in both versions
BAD_TIME = [
    ("ocpp1.6", '[2,"t1","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Available",'
                '"timestamp":"%s"}]'),
    ("ocpp1.6", '[2,"t1","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"%s",'
                '"sampledValue":[{"value":"1"}]}]}]'),
    ("ocpp2.0.1", '[2,"t1","StatusNotification",{"timestamp":"%s","connectorStatus":"Available","evseId":1,'
                  '"connectorId":1}]'),
    ("ocpp2.0.1", '[2,"t1","MeterValues",{"evseId":1,"meterValue":[{"timestamp":"%s",'
                  '"sampledValue":[{"value":1}]}]}]'),
]


@pytest.mark.parametrize("timestamp", ["yesterday", "2026-12-31T23:59:60Z"])
async def test_both_versions_answer_an_unreadable_timestamp_with_the_same_error(
    csms: CsmsApp, timestamp: str
) -> None:
    for subprotocol, frame in BAD_TIME:
        async with websockets.connect(f"{csms.ocpp_url}/TIME-{subprotocol}",
                                      subprotocols=[subprotocol]) as ws:  # type: ignore[list-item]
            await ws.send(frame % timestamp)
            reply = await _next_frame(ws)
            assert reply[:3] == [4, "t1", "PropertyConstraintViolation"], (frame, reply)
