"""Inbound framing over a raw socket: a running server gets every framing a station may
produce, in every chunking, and answers in order, keeps flow control, and closes with the
right code on invalid UTF-8 (1007) and too many fragments (1009)."""

from __future__ import annotations

import asyncio
import os
import socket
import struct

import orjson
from websockets.frames import Frame, Opcode

from csms.app import CsmsApp
from tests.gateway.relay import csms_direct_or_via_gateway  # noqa: F401  (csms: direct and via a gateway)
from tests.security.peers import upgrade_with


def masked(opcode: Opcode, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """A client frame as websockets writes it (random mask); ``rsv1`` sets that bit afterwards."""
    data = Frame(opcode, payload, fin=fin).serialize(mask=True)
    return bytes([data[0] | 0x40]) + data[1:] if rsv1 else data


def text(message: str) -> bytes:
    return masked(Opcode.TEXT, message.encode())


# --- a running server, over a raw socket -----------------------------------------------
class RawStation:
    """A raw-socket station: writes bytes exactly as given and parses the server's frames.

    ``early`` frames go out in the same write as the upgrade request, before the answer."""

    def __init__(self, port: int, station_id: str, early: bytes = b"") -> None:
        self.sock, self.buffer = upgrade_with(port, station_id, early)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def __enter__(self) -> RawStation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def close_code(self) -> int:
        """The code of the server's close frame (data frames before it are skipped)."""
        while True:
            opcode, payload = self.frame()
            if opcode == Opcode.CLOSE.value:
                return int(struct.unpack("!H", payload[:2])[0])

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def frame(self) -> tuple[int, bytes]:
        """The next server frame: (opcode, payload); server frames are unmasked and whole."""
        b0, b1 = self._read(2)
        size = b1 & 0x7F
        if size == 126:
            size = struct.unpack("!H", self._read(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", self._read(8))[0]
        return b0 & 0x0F, self._read(size)

    def answers(self, n: int) -> list[str]:
        """The message ids of the next ``n`` CALLRESULTs (pongs in between are skipped)."""
        ids: list[str] = []
        while len(ids) < n:
            opcode, payload = self.frame()
            if opcode == Opcode.TEXT.value:
                msg = orjson.loads(payload)
                assert msg[0] == 3, msg
                ids.append(msg[1])
        return ids


def heartbeat(uid: str) -> bytes:
    return text(f'[2,"{uid}","Heartbeat",{{}}]')


def _ocpp_port(app: CsmsApp) -> int:
    return app.ocpp_port


async def test_every_chunking_is_answered_in_order(csms: CsmsApp) -> None:
    def scenario() -> None:
        with RawStation(_ocpp_port(csms), "RAW1") as st_:
            # several calls in one write (the fast path) and a pong answered between them
            st_.sock.sendall(heartbeat("a1") + heartbeat("a2") + masked(Opcode.PING, b"hi") + heartbeat("a3"))
            assert st_.answers(3) == ["a1", "a2", "a3"]
            # one call byte by byte: partial frames are websockets' until it is between frames again
            for b in heartbeat("b1"):
                st_.sock.send(bytes([b]))
            st_.sock.sendall(heartbeat("b2"))
            assert st_.answers(2) == ["b1", "b2"]
            # a fragmented call with a ping between its fragments, then whole calls
            call = b'[2,"c1","Heartbeat",{}]'
            st_.sock.sendall(
                masked(Opcode.TEXT, call[:5], fin=False) + masked(Opcode.PING, b"x")
                + masked(Opcode.CONT, call[5:12], fin=False)
            )
            st_.sock.sendall(masked(Opcode.CONT, call[12:]) + heartbeat("c2"))
            assert st_.answers(2) == ["c1", "c2"]
            # a call split at every possible point between two writes
            frame = heartbeat("d")
            for cut in range(1, len(frame)):
                st_.sock.sendall(frame[:cut])
                st_.sock.sendall(frame[cut:] + heartbeat(f"d{cut}"))
                assert st_.answers(2) == ["d", f"d{cut}"]

    await asyncio.to_thread(scenario)


async def test_a_flood_without_reading_is_answered_completely_and_in_order(csms: CsmsApp) -> None:
    """Reading pauses above max_queue messages and resumes; nothing is lost or reordered."""
    def scenario() -> None:
        with RawStation(_ocpp_port(csms), "RAW2") as st_:
            ids = [f"f{i}" for i in range(3000)]
            st_.sock.sendall(b"".join(heartbeat(i) for i in ids))
            assert st_.answers(len(ids)) == ids

    await asyncio.to_thread(scenario)


async def test_invalid_utf8_closes_with_1007_on_both_paths(csms: CsmsApp) -> None:
    def close_code(data: bytes, station_id: str) -> int:
        with RawStation(_ocpp_port(csms), station_id) as st_:
            st_.sock.sendall(heartbeat("ok"))
            assert st_.answers(1) == ["ok"]
            st_.sock.sendall(data)
            return st_.close_code()

    bad = b'[2,"u","Heartbeat",{"x":"\xff"}]'
    whole = await asyncio.to_thread(close_code, masked(Opcode.TEXT, bad), "UTF1")
    fragmented = await asyncio.to_thread(
        close_code, masked(Opcode.TEXT, bad[:10], fin=False) + masked(Opcode.CONT, bad[10:]), "UTF2"
    )
    assert (whole, fragmented) == (1007, 1007)

    def still_served() -> list[str]:
        with RawStation(_ocpp_port(csms), "UTF3") as st_:
            st_.sock.sendall(heartbeat(os.urandom(4).hex()) + heartbeat("after"))
            return st_.answers(2)[1:]

    assert await asyncio.to_thread(still_served) == ["after"]


async def test_frames_sent_with_the_upgrade_request_are_answered_in_order(csms: CsmsApp) -> None:
    """Frames websockets queued before the session started (more than max_queue of them, so
    websockets had paused reading) come first, then everything after."""
    def scenario() -> None:
        early = [f"e{i}" for i in range(40)]
        with RawStation(_ocpp_port(csms), "RAW3", early=b"".join(heartbeat(i) for i in early)) as st_:
            assert st_.answers(len(early)) == early
            st_.sock.sendall(heartbeat("late"))
            assert st_.answers(1) == ["late"]

    await asyncio.to_thread(scenario)


async def test_too_many_fragments_close_with_1009(csms: CsmsApp) -> None:
    def scenario() -> int:
        with RawStation(_ocpp_port(csms), "RAW4") as st_:
            first, more = masked(Opcode.TEXT, b"[", fin=False), masked(Opcode.CONT, b" ", fin=False)
            st_.sock.sendall(first + more * 5000)
            return st_.close_code()

    assert await asyncio.to_thread(scenario) == 1009
