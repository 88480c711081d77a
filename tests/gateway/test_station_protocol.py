"""A gateway's station side (``csms/gateway/station.py``) against a scripted core: a real
``Gateway`` on a real port, raw TCP stations, and a core that is a real ``LinkProtocol`` on a
real Unix socket whose answers the test controls (when it accepts, pauses, closes)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import socket
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest

from csms.gateway.link import LinkProtocol, Op
from csms.gateway.process import Gateway, GatewaySettings
from tests.gateway.relay import socket_dir

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def upgrade(station_id: str) -> bytes:
    return (f"GET /ocpp/{station_id} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n").encode()


def masked(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A client frame (masked, as RFC 6455 requires of stations)."""
    mask = b"\x01\x02\x03\x04"
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
    return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


class ScriptedCore:
    """The core's end of the link: records every frame; accepts upgrades after ``delay_s``."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.heard: list[tuple[str, int, bytes]] = []
        self.delay_s = delay_s
        self.link: LinkProtocol | None = None
        self.lost: list[Exception | None] = []

    def protocol(self) -> LinkProtocol:
        self.link = LinkProtocol(self.on_frame, self.lost.append)
        return self.link

    def on_frame(self, op: int, cid: int, body: bytes) -> None:
        self.heard.append((Op(op).name, cid, body))
        if op == Op.OPEN:
            asyncio.get_running_loop().call_later(self.delay_s, self.send, Op.ACCEPT, cid, b"ocpp1.6")

    def send(self, op: int, cid: int, body: bytes = b"") -> None:
        assert self.link is not None
        self.link.send(op, cid, body)

    def ops(self, name: str) -> list[tuple[int, bytes]]:
        return [(cid, body) for op, cid, body in self.heard if op == name]


@asynccontextmanager
async def scripted(delay_s: float = 0.0, **options: Any) -> AsyncIterator[tuple[Gateway, ScriptedCore]]:
    folder = socket_dir()
    core = ScriptedCore(delay_s)
    path = os.path.join(folder, "core.sock")
    server = await asyncio.get_running_loop().create_unix_server(core.protocol, path)
    gw = Gateway(GatewaySettings(core_socket=path, host="127.0.0.1", port=0, ping_interval_s=None, **options))
    await gw.start()
    try:
        yield gw, core
    finally:
        await gw.stop()
        server.close()
        shutil.rmtree(folder, ignore_errors=True)


async def opened(port: int, station_id: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(upgrade(station_id))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def until(check: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_bad_frame_sent_with_the_upgrade_costs_that_connection_only() -> None:
    """websockets fails such a handshake at once; the core's later ACCEPT must not make the gateway
    write after its EOF (that error used to fail the link and close every station with 1011)."""
    async with scripted(delay_s=0.3) as (gw, core):
        good_r, good_w = await opened(gw.port, "GOOD")
        await until(lambda: len(gw._stations) == 1)
        good = next(iter(gw._stations))
        _, bad_w = await asyncio.open_connection("127.0.0.1", gw.port)
        bad_w.write(upgrade("BAD") + masked(0x8, b"\x03\xe8"))  # a close frame before any answer
        await until(lambda: len(core.ops("OPEN")) == 2)
        bad = core.ops("OPEN")[1][0]
        await until(lambda: any(cid == bad for cid, _ in core.ops("CLOSED")))
        await asyncio.sleep(0.5)  # the core's ACCEPT for BAD arrives meanwhile
        assert not core.lost and gw.link is not None and not gw.link.closed
        core.send(Op.SEND, good, b'[2,"1","Reset",{"type":"Soft"}]')
        frame = await asyncio.wait_for(good_r.readexactly(2 + 31), 5)
        assert frame[2:] == b'[2,"1","Reset",{"type":"Soft"}]'
        assert bad not in gw._stations and bad not in gw._opening
        good_w.close()
        bad_w.close()


async def test_nothing_read_after_a_message_that_fails_the_connection_is_relayed() -> None:
    async with scripted() as (gw, core):
        reader, writer = await opened(gw.port, "UTF")
        writer.write(masked(0x1, b'[2,"a",\xff]') + masked(0x1, b'[2,"after","Heartbeat",{}]'))
        close = await asyncio.wait_for(reader.readexactly(4), 5)
        assert close[0] == 0x88 and int.from_bytes(close[2:4], "big") == 1007
        await asyncio.sleep(0.2)
        assert core.ops("MSG") == []
        writer.close()


async def test_frames_sent_with_the_upgrade_wait_for_the_accept_even_across_a_full_link() -> None:
    async with scripted(delay_s=0.4) as (gw, core):
        assert gw.link is not None
        gw.link.writable.clear()  # the core reads slower than we write
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(upgrade("EARLY") + masked(0x1, b'[2,"early","Heartbeat",{}]'))
        await until(lambda: gw._opening and gw._waiting_link)
        gw.link.resume_writing()  # drains before the core decided
        await asyncio.sleep(0.1)
        assert core.ops("MSG") == []  # nothing for a connection the core has not accepted
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 101")
        await until(lambda: core.ops("MSG") == [(core.ops("OPEN")[0][0], b'[2,"early","Heartbeat",{}]')])
        writer.close()


@pytest.mark.parametrize("pause", ["core", "link"])
async def test_a_paused_station_closed_by_the_core_still_completes_the_closing_handshake(pause: str) -> None:
    async with scripted() as (gw, core):
        reader, writer = await opened(gw.port, "PAUSED")
        await until(lambda: len(gw._stations) == 1)
        cid = next(iter(gw._stations))
        assert gw.link is not None
        if pause == "core":
            core.send(Op.PAUSE, cid)
        else:
            gw.link.writable.clear()
        await asyncio.sleep(0.1)
        writer.write(b"".join(masked(0x1, b'[2,"h%d","Heartbeat",{}]' % i) for i in range(20)))
        await until(lambda: not gw._stations[cid]._reading)  # 16 held: reading stops too
        started = time.monotonic()
        core.send(Op.CLOSE, cid, orjson.dumps([1000, "bye"]))
        close = await asyncio.wait_for(reader.readexactly(7), 5)
        assert close[0] == 0x88 and close[4:] == b"bye"
        writer.write(masked(0x8, b"\x03\xe8"))  # the station answers the close
        assert await asyncio.wait_for(reader.read(), 5) == b""  # then a clean end (FIN), not a reset
        writer.close()
        await until(lambda: core.ops("CLOSED"))
        assert time.monotonic() - started < 2
        assert core.ops("CLOSED") == [(cid, b'[1000,""]')]  # the code the station sent back
        assert core.ops("MSG") == []  # nothing held was relayed after the core closed it
        gw.link.resume_writing()


async def test_messages_held_while_paused_still_reach_the_core_when_the_station_hangs_up() -> None:
    async with scripted() as (gw, core):
        _, writer = await opened(gw.port, "HANGUP")
        await until(lambda: len(gw._stations) == 1)
        cid = next(iter(gw._stations))
        core.send(Op.PAUSE, cid)
        await asyncio.sleep(0.1)
        calls = [b'[2,"m%d","Heartbeat",{}]' % i for i in range(5)]
        writer.write(b"".join(masked(0x1, c) for c in calls))
        await until(lambda: len(gw._stations[cid]._held or ()) == 5)
        assert core.ops("MSG") == []  # held while the core asked for a pause
        writer.transport.abort()  # the station loses power
        await until(lambda: core.ops("CLOSED"))
        assert core.ops("MSG") == [(cid, c) for c in calls]  # all of them, in order, before the close
        assert [op for op, _, _ in core.heard if op in ("MSG", "CLOSED")][-1] == "CLOSED"


async def test_an_accepted_connection_the_gateway_drops_is_always_reported_closed() -> None:
    """The core registered a session when it accepted: it must hear the end, or the session
    stays forever (here the ACCEPT cannot be answered: its body is not UTF-8)."""
    async with scripted(delay_s=60) as (gw, core):
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(upgrade("DROPPED"))
        await until(lambda: core.ops("OPEN"))
        cid = core.ops("OPEN")[0][0]
        core.send(Op.ACCEPT, cid, b"\xff")
        assert await asyncio.wait_for(reader.read(), 5) == b""  # dropped, no 101
        await until(lambda: core.ops("CLOSED"))
        assert [c for c, _ in core.ops("CLOSED")] == [cid]
        writer.close()


async def test_stopping_answers_pending_upgrades_and_tells_the_core_at_once() -> None:
    async with scripted(delay_s=60) as (gw, core):
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(upgrade("PENDING"))
        await until(lambda: core.ops("OPEN"))
        idle = socket.create_connection(("127.0.0.1", gw.port))  # connected, no request yet
        await until(lambda: len(gw._unupgraded) == 1)
        stopping = asyncio.create_task(gw.stop())
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 503")
        await until(lambda: core.ops("CLOSED"))  # the core stops deciding for it at once
        assert [c for c, _ in core.ops("CLOSED")] == [core.ops("OPEN")[0][0]]
        idle.settimeout(5)

        def dropped() -> bool:
            try:
                return idle.recv(100) == b""
            except ConnectionResetError:
                return True

        assert await asyncio.to_thread(dropped)  # at once, not after the open timeout (10 s)
        idle.close()
        await asyncio.wait_for(stopping, 5)
        writer.close()


def test_connections_that_never_upgrade_leave_no_cyclic_garbage_under_uvloop() -> None:
    """TCP health checks and stations that lose power mid-frame: the parser's EOFError (and its
    traceback) must not keep the protocol alive in a cycle (csms.gcpolicy thaws rarely)."""
    import uvloop

    def touch(port: int, data: bytes) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            if data:
                s.sendall(data)
                s.recv(4096)
                time.sleep(0.05)

    async def scenario() -> dict[str, int]:
        found: dict[str, int] = {}
        async with scripted() as (gw, _core):
            cases = {"health check": b"", "cut mid-frame": upgrade("CUT") + masked(0x1, b"ab", fin=False)}
            for name, data in cases.items():
                await asyncio.to_thread(touch, gw.port, data)  # warm-up
                await asyncio.sleep(0.3)
                gc.collect()
                gc.disable()
                try:
                    for _ in range(20):
                        await asyncio.to_thread(touch, gw.port, data)
                    await asyncio.sleep(0.5)
                    found[name] = gc.collect()
                finally:
                    gc.enable()
        return found

    assert uvloop.run(scenario()) == {"health check": 0, "cut mid-frame": 0}


async def test_a_request_that_is_no_websocket_upgrade_is_answered_without_asking_the_core() -> None:
    """websockets' own checks come first: the core never starts (and at once ends) a session,
    replacing the station's live one, for an upgrade that cannot succeed."""
    async with scripted() as (gw, core):
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(upgrade("NOUP").replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 400")
        assert b"Sec-WebSocket-Version" in await asyncio.wait_for(reader.read(), 5)  # the reason, then EOF
        assert core.ops("OPEN") == [] and not gw._opening
        writer.close()


async def test_a_ping_sent_with_the_upgrade_is_answered_after_the_101() -> None:
    """websockets answers the ping as it parses it; the pong must not reach the station ahead of
    the 101 (the station would read a frame where it expects the HTTP response)."""
    async with scripted(delay_s=0.3) as (gw, _core):
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(upgrade("EAGER") + masked(0x9, b"early"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert await asyncio.wait_for(reader.readexactly(7), 5) == b"\x8a\x05early"  # the pong, after
        writer.close()


async def test_a_refused_upgrade_gets_no_pong_for_a_ping_sent_with_it() -> None:
    async with scripted() as (gw, core):
        gw.stopping = True  # as while stopping: every upgrade is refused with 503
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(upgrade("REFUSED") + masked(0x9, b"early"))
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b"early" not in answer
        assert core.ops("OPEN") == []
        writer.close()


async def test_pings_that_get_no_pong_are_not_kept_for_the_connection_s_life() -> None:
    """With the pong timeout off nobody waits for a pong: a station that never answers must not
    grow a table of pings; a pong answers its ping and every earlier one (RFC 6455 5.5.3)."""
    async with scripted() as (gw, _core):
        reader, writer = await opened(gw.port, "DEAF")
        await until(lambda: len(gw._stations) == 1)
        station = next(iter(gw._stations.values()))
        waits = [await station.ping() for _ in range(50)]  # none answered, none given up on
        assert station._pongs is not None and len(station._pongs) == 4
        assert all(w.cancelled() for w in waits[:-4]) and not any(w.done() for w in waits[-4:])
        waits[-2].cancel()  # the keepalive gave up on this one
        await station.ping()
        assert len(station._pongs) == 4
        frames = await asyncio.wait_for(reader.readexactly(51 * 6), 5)  # 51 pings, 4-byte payloads
        writer.write(masked(0xA, frames[-4:]))  # the last ping's pong
        await until(lambda: not station._pongs)
        assert [w.done() and not w.cancelled() for w in waits[-4:]] == [True, True, False, True]
        writer.close()


async def test_a_flood_of_pings_before_the_101_drops_the_connection() -> None:
    """Their pongs wait for the 101 while the core decides: without a bound, an unauthenticated
    client could queue megabytes of them."""
    async with scripted(delay_s=3.0) as (gw, core):
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(upgrade("FLOOD") + masked(0x9, b"") * 100)
        await until(lambda: core.ops("OPEN"))
        cid = core.ops("OPEN")[0][0]
        await until(lambda: any(c == cid for c, _ in core.ops("CLOSED")))
        with contextlib.suppress(ConnectionResetError):  # aborted: a reset or a plain EOF
            assert await asyncio.wait_for(reader.read(), 5) == b""  # no 101, no pong
        assert not gw._opening and not gw._stations
        writer.close()
