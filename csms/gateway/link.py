"""The link between a gateway process and the core: length-prefixed frames over a Unix socket.

A frame is ``length (u32) | op (u8) | connection id (u32) | body``, ``length`` counting op, id
and body. Station messages travel as their frame text (UTF-8, no re-encoding); the few control
frames carry small orjson bodies. Both ends use ``LinkProtocol``: it splits the byte stream
into frames for a callback and batches what it sends, one ``write`` per loop iteration, so a
busy core pays one system call per link per iteration instead of one per station.
"""

from __future__ import annotations

import asyncio
import enum
import struct
from collections.abc import Callable
from typing import Any, Protocol, cast

import structlog

log = structlog.get_logger("csms.gateway")

_HEADER = struct.Struct(">IBI")
MAX_FRAME = 16 << 20  # far above any OCPP message a gateway accepts (its max_size is lower)
MAX_MESSAGE = MAX_FRAME - 5  # the largest station message a link carries (max_message_bytes)


class Op(enum.IntEnum):
    OPEN = 1  # gateway -> core: an upgrade request's facts (orjson)
    ACCEPT = 2  # core -> gateway: "subprotocol\nstation id" (text; the id for logs only)
    REFUSE = 3  # core -> gateway: {"status", "text", "headers"} (orjson)
    MSG = 4  # gateway -> core: a text frame from the station
    SEND = 5  # core -> gateway: a text frame for the station
    CLOSE = 6  # core -> gateway: close the station's socket, [code, reason] (orjson)
    CLOSED = 7  # gateway -> core: the station's socket closed, [code, reason] (orjson)
    PAUSE = 8  # core -> gateway: stop reading from the station (its messages queue up in the core)
    RESUME = 9  # core -> gateway: read from the station again
    BINARY = 10  # gateway -> core: a binary frame from the station (the session answers it as bad JSON)
    ALIVE = 11  # gateway -> core: the station answered a keepalive ping (empty body; moves its last seen)


OnFrame = Callable[[int, int, bytes], None]


def frame(op: int, cid: int, body: bytes) -> bytes:
    return _HEADER.pack(len(body) + 5, op, cid) + body


class LinkProtocol(asyncio.Protocol):
    """One end of a link. ``on_frame(op, cid, body)`` is called for every frame received, in order."""

    def __init__(
        self, on_frame: OnFrame, on_lost: Callable[[Exception | None], None],
        on_writable: Callable[[], None] | None = None,
    ) -> None:
        self._on_frame = on_frame
        self._on_lost = on_lost
        self._on_writable = on_writable  # called when the peer caught up (``writable`` set again)
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.writable = asyncio.Event()  # cleared while the peer reads slower than we write
        self.writable.set()
        self.frames_in = 0
        self.frames_out = 0

    # --- receiving -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses
        self.transport.set_write_buffer_limits(high=4 << 20)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos, size, unpack = 0, len(buf), _HEADER.unpack_from
        on_frame = self._on_frame
        while size - pos >= 9:  # the shortest frame: a header with an empty body
            length, op, cid = unpack(buf, pos)
            if length < 5 or length > MAX_FRAME:
                self._fail(f"bad frame length {length}")
                return
            end = pos + 4 + length
            if end > size:
                break
            body = bytes(buf[pos + 9:end])
            pos = end
            self.frames_in += 1
            try:
                on_frame(op, cid, body)
            except Exception as exc:  # a bug on our side must not wedge the whole link
                self._fail(f"frame {op} failed: {exc!r}")
                return
        if pos:
            del buf[:pos]

    def _fail(self, why: str) -> None:
        self.closed = True
        self.writable.set()  # whoever waits to write finds the link closed
        if self.transport is not None:
            self.transport.abort()
        self._on_lost(ConnectionError(why))
        self._on_lost = _ignore

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.writable.set()  # whoever waits to write finds the link closed
        self._on_lost(exc)
        self._on_lost = _ignore

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()
        if self._on_writable is not None:
            self._on_writable()

    # --- sending -------------------------------------------------------------------------
    def send(self, op: int, cid: int, body: bytes) -> None:
        """Queue a frame; all frames queued in one loop iteration leave in one write."""
        if self.closed:
            return
        self._out.append(_HEADER.pack(len(body) + 5, op, cid))
        self._out.append(body)
        self.frames_out += 1
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out, self._out = self._out, []
        if out and not self.closed and self.transport is not None:
            self.transport.write(b"".join(out))

    def close(self) -> None:
        self._flush()
        self.closed = True
        self.writable.set()
        if self.transport is not None:
            self.transport.close()


def _ignore(_exc: Exception | None) -> Any:
    return None


class Link(Protocol):
    """What either end needs of a link: a ``LinkProtocol`` over a socket or a ``LoopbackLink``."""

    closed: bool
    writable: asyncio.Event

    def send(self, op: int, cid: int, body: bytes) -> None: ...

    def close(self) -> None: ...


class LoopbackLink:
    """One end of a link inside one process (the in-process endpoint, ``csms.gateway.local``).

    ``send`` hands the frame to the other end's ``on_frame`` at once: no framing, no copy, no
    system call. Both ends run on the same event loop; a frame's handler may send frames back
    (e.g. a ``PAUSE`` while a message is fed), which is delivered the same way.
    """

    __slots__ = ("_on_lost", "closed", "on_frame", "peer", "writable")

    def __init__(self, on_frame: OnFrame, on_lost: Callable[[Exception | None], None]) -> None:
        self.on_frame = on_frame  # what the other end's ``send`` calls
        self._on_lost = on_lost
        self.peer: LoopbackLink | None = None
        self.closed = False
        self.writable = asyncio.Event()  # never full: the receiving end buffers per station
        self.writable.set()

    def send(self, op: int, cid: int, body: bytes) -> None:
        peer = self.peer
        if not self.closed and peer is not None:
            try:
                peer.on_frame(op, cid, body)
            except Exception:  # a bug on one side: logged, never thrown into the other side's caller
                log.exception("loopback frame failed", op=op, connection=cid)

    def close(self) -> None:
        """Close both ends; each end's ``on_lost`` is called once, as after a socket's close."""
        for end in (self, self.peer):
            if end is not None and not end.closed:
                end.closed = True
                on_lost, end._on_lost = end._on_lost, _ignore
                on_lost(None)


def loopback_pair(
    a_frame: OnFrame, a_lost: Callable[[Exception | None], None],
    b_frame: OnFrame, b_lost: Callable[[Exception | None], None],
) -> tuple[LoopbackLink, LoopbackLink]:
    """Two linked ends: what ``a`` sends reaches ``b_frame`` and the other way round."""
    a, b = LoopbackLink(a_frame, a_lost), LoopbackLink(b_frame, b_lost)
    a.peer, b.peer = b, a
    return a, b
