"""The in-process endpoint is a gateway on a loopback link (``csms.gateway.local``): the link's
own behaviour, and what the core's endpoint now does like a gateway process."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import websockets
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from csms.app import running
from csms.core.events import StationConnected
from csms.gateway.link import Op, loopback_pair
from csms.gateway.station import StationProtocol
from csms.ocpp.handshake import Admitted, Refused, Upgrade
from tests.conftest import make_settings
from tests.gateway.test_station_protocol import upgrade as upgrade_request
from tests.security.peers import raw_upgrade


async def test_a_loopback_link_delivers_at_once_both_ways_and_closes_both_ends_once() -> None:
    got: list[tuple[str, int, int, bytes]] = []
    lost: list[str] = []

    def core_frame(op: int, cid: int, body: bytes) -> None:
        got.append(("core", op, cid, body))
        if op == Op.MSG:  # answering from inside a delivery (as a PAUSE while a message is fed)
            core.send(Op.PAUSE, cid, b"")

    def gw_frame(op: int, cid: int, body: bytes) -> None:
        got.append(("gw", op, cid, body))
        if body == b"boom":
            raise RuntimeError("a bug")

    core, gw = loopback_pair(core_frame, lambda exc: lost.append("core"),
                             gw_frame, lambda exc: lost.append("gw"))
    gw.send(Op.MSG, 7, b"[2]")
    assert got == [("core", Op.MSG, 7, b"[2]"), ("gw", Op.PAUSE, 7, b"")]  # no loop iteration needed
    core.send(Op.SEND, 0, b"boom")  # the receiving side fails: logged, not raised into the sender
    assert got[-1] == ("gw", Op.SEND, 0, b"boom")
    del got[-1]
    assert core.writable.is_set() and gw.writable.is_set()
    gw.close()
    gw.close()
    core.close()
    assert sorted(lost) == ["core", "gw"] and core.closed and gw.closed
    gw.send(Op.MSG, 7, b"late")
    core.send(Op.SEND, 7, b"late")
    assert len(got) == 2


def _stations(app: object) -> list[StationProtocol]:
    ocpp = app.ocpp  # type: ignore[attr-defined]
    return [st for endpoint in ocpp.endpoints for st in endpoint.gateway._stations.values()]


async def test_the_in_process_endpoint_holds_stations_like_a_gateway(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, auto_register=True)) as app:
        url = f"ws://127.0.0.1:{app.ocpp_port}/ocpp/LOCAL-1"
        async with websockets.connect(url, subprotocols=[Subprotocol("ocpp1.6")], ping_interval=None) as ws:
            await ws.send('[2,"h1","Heartbeat",{}]')
            assert '"currentTime"' in await asyncio.wait_for(ws.recv(), 5)
            # one lean protocol per socket, named after its station (the ACCEPT carries the id)
            assert [st.station_id for st in _stations(app)] == ["LOCAL-1"]
            session = app.registry.get("LOCAL-1")
            assert session is not None and type(session.ws).__name__ == "GatewayConnection"

            # a request that can never become a WebSocket is answered without asking the core
            def plain_get() -> bytes:
                with socket.create_connection(("127.0.0.1", app.ocpp_port), timeout=5) as sock:
                    sock.sendall(b"GET /ocpp/LOCAL-2 HTTP/1.1\r\nHost: x\r\n\r\n")
                    return sock.recv(4096)

            assert (await asyncio.to_thread(plain_get)).startswith(b"HTTP/1.1 426")
            metrics = app.metrics.render().decode()
            assert 'csms_handshakes_total{outcome="accepted"} 1.0' in metrics
            assert "LOCAL-2" not in str(await app.service.store.list_stations())
        assert _stations(app) == []


async def test_stopping_the_csms_closes_in_process_stations_with_1001(tmp_path: Path) -> None:
    closed: list[tuple[int, str]] = []
    async with running(make_settings(tmp_path, auto_register=True)) as app:
        url = f"ws://127.0.0.1:{app.ocpp_port}/ocpp/LEAVING"
        ws = await websockets.connect(url, subprotocols=[Subprotocol("ocpp2.0.1")], ping_interval=None)

        async def read_until_closed() -> None:
            try:
                while True:
                    await ws.recv()
            except ConnectionClosed as exc:
                assert exc.rcvd is not None
                closed.append((exc.rcvd.code, exc.rcvd.reason))

        reader = asyncio.create_task(read_until_closed())
        await asyncio.sleep(0.1)
    await asyncio.wait_for(reader, 5)
    assert closed == [(1001, "CSMS shutting down")]


async def test_a_queue_of_one_message_still_serves_a_burst(tmp_path: Path) -> None:
    """``limits.max_queue`` may be 1: the pause it causes must be lifted again."""
    settings = make_settings(tmp_path, auto_register=True, limits={"max_queue": 1})
    async with running(settings) as app:
        url = f"ws://127.0.0.1:{app.ocpp_port}/ocpp/BURST"
        async with websockets.connect(url, subprotocols=[Subprotocol("ocpp1.6")], ping_interval=None) as ws:
            for i in range(10):
                await ws.send(f'[2,"h{i}","Heartbeat",{{}}]')
            answers = [await asyncio.wait_for(ws.recv(), 5) for _ in range(10)]
            assert [a.split('"')[1] for a in answers] == [f"h{i}" for i in range(10)]


async def test_an_upgrade_decided_while_the_csms_stops_starts_no_session(tmp_path: Path) -> None:
    events: list[str] = []
    async with running(make_settings(tmp_path, auto_register=True)) as app:
        # a station that will not answer the closing handshake keeps the stop going for a while
        silent = await asyncio.to_thread(raw_upgrade, app.ocpp_port, "SILENT")
        decide, gate = app.ocpp.decide, asyncio.Event()

        async def slow_decide(up: Upgrade) -> Admitted | Refused:
            await gate.wait()
            return await decide(up)

        app.ocpp.decide = slow_decide  # type: ignore[method-assign]
        app.bus.subscribe(lambda ev: events.append(ev.station_id), StationConnected)  # type: ignore[attr-defined]

        def attempt() -> bytes:
            with socket.create_connection(("127.0.0.1", app.ocpp_port), timeout=10) as sock:
                sock.sendall(upgrade_request("LATE"))
                return sock.recv(4096)

        answer = asyncio.ensure_future(asyncio.to_thread(attempt))
        await asyncio.sleep(0.3)  # the core is deciding
        asyncio.get_running_loop().call_later(0.3, gate.set)  # it decides while the CSMS stops
    silent.close()
    assert (await asyncio.wait_for(answer, 10)).startswith(b"HTTP/1.1 503")
    assert events == []  # no session started (nor replaced one) for LATE
    assert 'csms_handshakes_total{outcome="accepted"} 1.0' in app.metrics.render().decode()  # SILENT
