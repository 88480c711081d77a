"""The core's end of gateway links: a Unix socket that gateway processes connect to.

For each station a gateway announces (``OPEN``), the core takes the same handshake decision
as its own endpoint (``SessionHost.decide``) and answers ``ACCEPT`` or ``REFUSE``; an accepted
station gets a ``GatewayConnection`` and an ordinary session (``SessionHost.run_session``).
A link that drops closes all its stations' sessions, as a TCP close would. The core's OCPP
server is seen only through the ``csms.gateway.port.SessionHost`` port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from csms.gateway.link import Link, LinkProtocol, Op
from csms.gateway.port import SessionHost
from csms.gcpolicy import note_churn
from csms.ocpp.handshake import Admitted, Refused, Upgrade
from csms.security.station_auth import Refusal
from csms.security.tls import PeerCertificate

log = structlog.get_logger("csms.gateway")

LINK_LOST = 1011  # what a session sees as the close code when its gateway went away
_STOPPING = Refused(Refusal(503, "stopping", "CSMS shutting down, retry later\n"), retry_after=5)


class GatewayConnection:
    """A station whose WebSocket a gateway holds: an inbox fed by the link, writes sent on it."""

    __slots__ = (
        "_inbox",
        "_link",
        "_loop",
        "_max_inbox",
        "_paused",
        "_waiter",
        "cid",
        "close_code",
        "close_reason",
        "on_alive",
        "remote_address",
    )

    def __init__(self, link: Link, cid: int, remote: str, max_inbox: int = 16) -> None:
        self._link = link
        self._max_inbox = max_inbox  # then the gateway stops reading from the station (max_queue)
        self.cid = cid
        self.remote_address = (remote, 0)
        self._inbox: deque[str | bytes] | None = None  # only while messages wait (~0.7 KiB each)
        self._waiter: asyncio.Future[None] | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self._loop = asyncio.get_running_loop()
        self._paused = False
        self.on_alive: Callable[[], object] | None = None  # the station answered a keepalive ping

    # --- fed by the link -------------------------------------------------------------------
    def feed(self, text: str | bytes) -> None:
        if self.close_code is not None:
            return
        inbox = self._inbox
        if inbox is None:
            self._inbox = inbox = deque()
        inbox.append(text)
        if len(inbox) >= self._max_inbox and not self._paused:  # as websockets' max_queue does
            self._paused = True
            self._link.send(Op.PAUSE, self.cid, b"")
        self._wake()

    def feed_close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- what the session uses -------------------------------------------------------------
    async def recv(self) -> str | bytes:
        while True:
            inbox = self._inbox
            if inbox:
                message = inbox.popleft()
                if not inbox:
                    self._inbox = None
                if self._paused and len(inbox) <= self._max_inbox // 4:  # 0 too: any max_queue
                    self._paused = False
                    self._link.send(Op.RESUME, self.cid, b"")  # may feed more at once (loopback)
                return message
            if self.close_code is not None:
                raise ConnectionClosed(Close(self.close_code, self.close_reason), None)
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def write_now(self, data: bytes) -> None:
        """Send a text frame now (the link batches; the endpoint queues what the station's
        socket cannot take yet and stops reading from it meanwhile)."""
        if self.close_code is None:
            self._link.send(Op.SEND, self.cid, data)

    async def send(self, message: str | bytes, *, text: bool | None = None) -> None:
        if self.close_code is not None:
            raise ConnectionClosed(Close(self.close_code, self.close_reason), None)
        await self._link.writable.wait()
        self.write_now(message.encode() if isinstance(message, str) else message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.close_code is None:
            self._link.send(Op.CLOSE, self.cid, orjson.dumps([code, reason]))
        self.feed_close(code, reason)


def _upgrade(facts: dict[str, Any]) -> Upgrade:
    """An OPEN frame's facts (see ``csms.gateway.process``)."""
    peer = facts.get("peer")
    return Upgrade(
        path=str(facts["path"]), offered=[str(p) for p in facts["offered"]],
        authorization=[str(a) for a in facts["authorization"]], ip=str(facts["ip"]), tls=bool(facts["tls"]),
        peer=PeerCertificate(tuple(peer[0]), tuple(peer[1]), int(peer[2])) if peer else None,
    )


class StationLink:
    """One link as the core sees it (a gateway process's, or the in-process endpoint's
    loopback): its stations by connection id.

    ``protocol`` is its end of the link (set by whoever made it); ``closing()`` tells whether
    new stations are refused (503); ``on_gone`` is called once the link dropped; ``max_inbox``
    messages waiting for a session pause the station (``limits.max_queue``). The in-process
    endpoint's link sets ``local``: its endpoint already counted each ended connection
    (``csms.gcpolicy.note_churn``), and its ``ACCEPT`` may carry the station id for the
    endpoint's logs (a gateway process of an older release would take it for the subprotocol).
    """

    protocol: Link

    def __init__(
        self, host: SessionHost, *, closing: Callable[[], bool],
        on_gone: Callable[[StationLink], None] | None = None, local: bool = False, max_inbox: int = 16,
    ) -> None:
        self.host = host
        self.max_inbox = max_inbox
        self.closing = closing
        self.on_gone = on_gone
        self.local = local
        self.conns: dict[int, GatewayConnection] = {}
        self.opening: set[int] = set()

    def on_frame(self, op: int, cid: int, body: bytes) -> None:
        if op == Op.MSG:
            conn = self.conns.get(cid)
            if conn is not None:
                conn.feed(body.decode(errors="replace"))  # the gateway checked UTF-8 (1007 if not)
        elif op == Op.BINARY:
            conn = self.conns.get(cid)
            if conn is not None:
                conn.feed(body)  # the session answers it (not JSON text)
        elif op == Op.ALIVE:
            conn = self.conns.get(cid)
            if conn is not None and conn.on_alive is not None:
                conn.on_alive()
        elif op == Op.OPEN:
            self.opening.add(cid)
            self.host.spawn(self.open(cid, orjson.loads(body)))
        elif op == Op.CLOSED:
            if not self.local:
                note_churn()  # its leftovers may need a thaw (csms.gcpolicy)
            self.opening.discard(cid)
            conn = self.conns.pop(cid, None)
            if conn is not None:
                code, reason = orjson.loads(body)
                conn.feed_close(int(code), str(reason))
        else:
            log.warning("unexpected frame from gateway ignored", op=op)

    async def open(self, cid: int, facts: dict[str, Any]) -> None:
        host = self.host
        try:
            up = _upgrade(facts)
            decision = _STOPPING if self.closing() else await host.decide(up)
        except Exception:  # never leave a gateway waiting: answer 500
            self.opening.discard(cid)
            log.exception("handshake decision failed", path=facts.get("path"))
            self.protocol.send(Op.REFUSE, cid, orjson.dumps(
                {"status": 500, "text": "Internal error\n", "headers": {}}))
            return
        if cid not in self.opening:  # the station left (or the link dropped) while we decided
            return
        self.opening.discard(cid)
        if self.closing() and isinstance(decision, Admitted):  # the CSMS began to stop meanwhile
            decision = _STOPPING
        if not isinstance(decision, Admitted):
            self.protocol.send(Op.REFUSE, cid, orjson.dumps({
                "status": decision.refusal.status, "text": decision.refusal.text, "headers": decision.headers,
            }))
            return
        conn = GatewayConnection(self.protocol, cid, up.ip, self.max_inbox)
        self.conns[cid] = conn
        # the subprotocol for the 101 (in-process: and the station's id, for the endpoint's logs)
        accept = f"{decision.version.value}\n{decision.station_id}" if self.local else decision.version.value
        self.protocol.send(Op.ACCEPT, cid, accept.encode())
        if conn.close_code is not None:  # a loopback answers at once: the endpoint was stopping
            return
        # a task of its own: this one ends and lets go of the upgrade's facts (~1 KiB a station)
        host.spawn(self._serve(conn, decision, up.tls))

    async def _serve(self, conn: GatewayConnection, admitted: Admitted, tls: bool) -> None:
        cid = conn.cid
        try:
            await self.host.run_session(
                conn, admitted.station_id, admitted.version, remote=conn.remote_address[0], tls=tls
            )
        finally:
            if self.conns.get(cid) is conn:
                del self.conns[cid]
                if conn.close_code is None:  # the session failed, the socket is open: drop it too
                    await conn.close(1011, "internal error")

    def on_lost(self, exc: Exception | None) -> None:
        if self.on_gone is not None:
            self.on_gone(self)
        self.opening.clear()
        conns, self.conns = self.conns, {}
        for conn in conns.values():
            conn.feed_close(LINK_LOST, "gateway link lost")
        if conns or exc is not None:
            log.warning("gateway link lost", stations=len(conns), error=str(exc) if exc else None)


class GatewayHub:
    """Listens on ``path`` for gateway links (``csms serve --gateway-socket``)."""

    def __init__(self, host: SessionHost, path: str, *, max_inbox: int = 16) -> None:
        self.host = host
        self.path = path
        self.max_inbox = max_inbox
        self.links: set[StationLink] = set()
        self.closing = False  # set while the CSMS stops: new stations are refused
        self._server: asyncio.AbstractServer | None = None

    def _unlinked(self, link: StationLink) -> None:
        self.links.discard(link)
        log.info("gateway unlinked", links=len(self.links))

    def stations(self) -> int:
        return sum(len(link.conns) for link in self.links)

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.stat(self.path).st_mode):
                os.unlink(self.path)  # left by a core that did not stop cleanly
        loop = asyncio.get_running_loop()

        def accept() -> LinkProtocol:
            link = StationLink(self.host, closing=lambda: self.closing, on_gone=self._unlinked,
                               max_inbox=self.max_inbox)
            link.protocol = protocol = LinkProtocol(link.on_frame, link.on_lost)
            self.links.add(link)
            log.info("gateway linked", links=len(self.links))
            return protocol

        # only this user's gateways may speak for stations: the socket is 0600 from its creation
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(self.path)
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(old_umask)
        self._server = await loop.create_unix_server(accept, sock=sock)
        log.info("gateway socket listening", path=self.path)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        for link in list(self.links):
            link.protocol.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
