"""A gateway's WebSocket side: one lean asyncio protocol per station (ADR 0005).

Each station is a ``StationProtocol`` driving websockets' Sans-I/O ``ServerProtocol`` directly:
no task, future, queue or assembler per connection, so a station costs a few KiB and a message
is relayed from ``data_received`` without waking a coroutine. What websockets' asyncio server
did for us is here, in the same order:

1. the pre-authentication caps (counted from ``connection_made`` until upgraded or lost);
2. the upgrade request goes to the core, which decides (``OPEN`` → ``ACCEPT``/``REFUSE``);
3. an accepted upgrade is validated by websockets (``accept``), answered 101 with the
   subprotocol the core chose, and relayed from then on;
4. the open timeout (handshake), the decision timeout, the close timeout;
5. reading pauses while the core asked for it (``PAUSE``), while the link to the core is
   full, or while the station does not read its own answers (write buffer over its limit).
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from typing import TYPE_CHECKING, Any, cast

import orjson
from websockets.asyncio.messages import MAX_FRAGMENTS
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from csms.gateway.link import Op
from csms.gcpolicy import note_churn
from csms.ocpp.handshake import offered_subprotocols
from csms.security.admission import peer_ip
from csms.security.tls import peer_certificate, uses_tls

if TYPE_CHECKING:
    from csms.gateway.process import Gateway

LINK_LOST = 0  # the answer an upgrade gets when the core's link dropped before the decision

_TEXT, _BINARY, _CONT, _PONG = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PONG
_MAX_HELD = 16  # messages read while relaying is paused; then reading stops too
_MAX_EARLY_WRITES = 16  # answers (pongs) queued before the 101: more is a flood, not a station
_MAX_PINGS = 4  # our pings awaiting a pong; a pong answers every earlier ping, so older ones can go


def _busy(ws: ServerProtocol, text: str) -> Response:
    response = ws.reject(503, text)
    response.headers["Retry-After"] = "5"
    return response


class StationProtocol(asyncio.Protocol):
    """One station's socket in a gateway. Also what the keepalive sweep visits (``Peer``)."""

    __slots__ = (
        "_core_knows", "_deadline", "_fragment_op", "_fragments", "_held", "_pongs", "_pre_auth_ip",
        "_reading", "_timer",
        "_upgrade", "cid", "frames_in", "gw", "keepalive_mark", "outbox", "paused_by_core",
        "station_id", "transport", "waiting_for_link", "write_paused", "ws",
    )

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.ws: ServerProtocol | None = None
        self.transport: asyncio.Transport | None = None
        self.cid = 0  # 0 until the core was asked; the core's name for this connection after that
        self._core_knows = False  # the core holds this connection (asked, not refused, no CLOSED sent)
        self.station_id = "gateway connection (opening)"
        self.frames_in = 0
        self.keepalive_mark: tuple[int, float] = (0, 0.0)
        self._pre_auth_ip: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0  # of the opening handshake
        self._upgrade: Response | None = None  # the 101 waiting for the core's decision
        self._fragments: list[bytes] | None = None  # a fragmented message being received
        self._fragment_op = 0
        self._held: deque[tuple[int, bytes]] | None = None  # read while relaying was paused
        self._pongs: dict[bytes, asyncio.Future[float]] | None = None
        self._reading = True
        self.paused_by_core = False
        self.waiting_for_link = False
        self.write_paused = False
        self.outbox: deque[bytes] | None = None  # frames for the station while its socket is full

    # --- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = t = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        gw = self.gw
        self._pre_auth_ip = gw.admission.admit_pre_auth(t)
        if self._pre_auth_ip is None:  # over a pre-authentication cap: aborted
            return
        gw._unupgraded.add(self)
        s = gw.settings
        # the core chooses the subprotocol: websockets is told of none, the 101 gets the choice
        self.ws = ServerProtocol(max_size=s.max_message_bytes)
        loop = gw.loop
        self._deadline = loop.time() + s.open_timeout_s
        self._timer = loop.call_at(self._deadline, self._opening_timed_out)

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        if ws is None:
            return
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Frame):
                if not self._on_frame(event):
                    break  # we failed the connection (1007/1009): nothing after it is relayed
            elif isinstance(event, Request):
                self._on_request(event)
        if self._upgrade is not None and len(ws.writes) > _MAX_EARLY_WRITES:
            # pongs wait for the 101 while the core decides; a station does not send a stream of
            # pings before it is even accepted: drop it (connection_lost tells the core)
            self.transport.abort()  # type: ignore[union-attr]
            return
        self._flush()
        if ws.state is State.CONNECTING and ws.eof_sent and self.cid in self.gw._opening:
            # websockets failed the handshake (a bad frame sent with the request) while the core
            # decides: no answer can be written any more; connection_lost tells the core
            self.transport.abort()  # type: ignore[union-attr]

    def eof_received(self) -> bool | None:
        if self.ws is not None:
            self.ws.receive_eof()
            self._flush()
        return None  # close the transport

    def pause_writing(self) -> None:
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        outbox, self.outbox = self.outbox, None
        while outbox:
            self.send_text(outbox.popleft())
            if self.write_paused:  # full again: keep the rest in order
                outbox.extend(self.outbox or ())
                self.outbox = outbox
                break
        self._update_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        note_churn()
        self._release_pre_auth()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ws, gw = self.ws, self.gw
        if ws is not None:
            ws.receive_eof()  # runs the parser to its end
            ws.events_received()
            # an EOFError kept there (with its traceback) would hold the parser and ``ws`` in a
            # reference cycle: connections that never upgraded (health checks) would leave garbage
            ws.parser_exc = ws.handshake_exc = None
            ws.parser = None  # type: ignore[assignment]
        if self._pongs:
            for fut in self._pongs.values():
                if not fut.done():
                    fut.set_exception(ConnectionClosed(None, None))
                    fut.exception()  # nobody may wait for it (pong timeout off): no "never retrieved"
            self._pongs = None
        held, self.outbox, self._held = self._held, None, None
        gw._unupgraded.discard(self)
        cid = self.cid
        if not cid:
            return
        gw._opening.pop(cid, None)
        if gw._stations.pop(cid, None) is not None:
            link = gw.link
            if self._core_knows and link is not None and not link.closed:
                # what the station sent before it hung up still reaches its session (at most 16
                # messages, read while relaying was paused), as websockets' own queue did
                for op, message in held or ():
                    link.send(op, cid, message)
            rcvd: Close | None = ws.close_rcvd if ws is not None else None
            self._forget_core(*((rcvd.code, rcvd.reason) if rcvd is not None else (1006, "")))
        else:  # it left while the core decided, or before an ACCEPT could be answered
            self._forget_core(1006, "handshake abandoned")
        gw._waiting_link.discard(self)
        if not gw._stations and gw._emptied is not None:
            gw._emptied.set()

    def _forget_core(self, code: int, reason: str) -> None:
        """Tell the core, once, that this connection is over (nothing if it already let go)."""
        if self._core_knows:
            self._core_knows = False
            link = self.gw.link
            if link is not None and not link.closed:
                link.send(Op.CLOSED, self.cid, orjson.dumps([code, reason]))

    # --- the opening handshake ------------------------------------------------------------
    def _on_request(self, request: Request) -> None:
        ws, gw = self.ws, self.gw
        assert ws is not None and self.transport is not None
        link = gw.link
        if link is None or link.closed or gw.stopping:
            self._respond(_busy(ws, "CSMS core unavailable, retry later\n"))
            return
        upgrade = ws.accept(request)  # websockets' checks of the upgrade itself, before the core's
        if upgrade.status_code != 101:  # not a WebSocket upgrade (400, 426): the core never hears of it
            self._respond(upgrade)
            return
        t = self.transport
        peer = peer_certificate(t)
        facts = {
            "path": request.path,
            "offered": offered_subprotocols(request.headers),
            "authorization": request.headers.get_all("Authorization"),
            "ip": self._pre_auth_ip or peer_ip(t), "tls": uses_tls(t),
            "peer": [list(peer.common_names), list(peer.organizations), str(peer.serial)] if peer else None,
        }
        self.cid = cid = next(gw._ids)
        self.station_id = f"gateway connection {cid}"
        self._upgrade = upgrade  # the 101, sent once the core accepts
        # websockets' parser keeps the request for the connection's life: not its ~1.7 KiB of headers
        request.headers.clear()
        gw._opening[cid] = self
        gw._unupgraded.discard(self)  # the core knows it now: Gateway.stop answers it
        self._core_knows = True
        link.send(Op.OPEN, cid, orjson.dumps(facts))
        decide_by = gw.loop.time() + gw.settings.decision_timeout_s
        if decide_by < self._deadline:
            self._rearm(decide_by, self._decision_timed_out)

    def decided(self, op: int, body: bytes) -> None:
        """The core's answer to this upgrade (``ACCEPT``, ``REFUSE``, or ``LINK_LOST``)."""
        ws, response = self.ws, self._upgrade
        self._upgrade = None
        if op == Op.REFUSE:
            self._core_knows = False  # the core forgot it
        if ws is None or response is None or ws.state is not State.CONNECTING or ws.eof_sent:
            return  # an accepted one is reported CLOSED by connection_lost
        gw = self.gw
        if op == LINK_LOST or (op == Op.ACCEPT and gw.stopping):
            self._forget_core(1001, "gateway shutting down")
            self._respond(_busy(ws, "CSMS core busy, retry later\n"))
            return
        if op == Op.REFUSE:
            refusal = orjson.loads(body)
            response = ws.reject(int(refusal["status"]), str(refusal["text"]))
            response.headers.update(refusal["headers"])
            self._respond(response)
            return
        chosen, _, station_id = body.decode().partition("\n")
        if chosen:
            response.headers["Sec-WebSocket-Protocol"] = chosen
        if station_id:  # for the logs (keepalive)
            self.station_id = station_id
        self._respond(response)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._release_pre_auth()
        self.keepalive_mark = (0, gw.loop.time())
        gw._stations[self.cid] = self
        if self._held:  # frames that came with the upgrade request
            self.release_held()
        self._update_reading()

    def _respond(self, response: Response) -> None:
        ws, t = self.ws, self.transport
        if ws is None or t is None or ws.eof_sent:
            return
        response.headers["Server"] = "csms"
        early = ws.data_to_send()  # pongs to pings that came with the request: after the response
        ws.send_response(response)
        self._flush()
        if response.status_code != 101:
            t.close()  # once written: a refused client holds no socket (nor pre-auth slot) here
            return
        for data in early:
            if data:
                t.write(data)

    def _opening_timed_out(self) -> None:
        self._timer = None
        if self.ws is not None and self.ws.state is State.CONNECTING and self.transport is not None:
            self.transport.abort()  # the open timeout: connection_lost tells the core if it was asked

    def _decision_timed_out(self) -> None:
        self._timer = self.gw.loop.call_at(self._deadline, self._opening_timed_out)
        if self.gw._opening.pop(self.cid, None) is None or self.ws is None or self.ws.eof_sent:
            return
        self._upgrade = None
        self._forget_core(1006, "handshake abandoned")
        self._respond(_busy(self.ws, "CSMS core busy, retry later\n"))

    def _rearm(self, when: float, callback: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.gw.loop.call_at(when, callback)

    def _release_pre_auth(self) -> None:
        if self._pre_auth_ip is not None:
            self.gw.admission.pre_auth.release(self._pre_auth_ip)
            self._pre_auth_ip = None

    # --- relaying ---------------------------------------------------------------------------
    def _on_frame(self, frame: Frame) -> bool:
        """Relay a complete message; False once this connection has been failed."""
        opcode, data = frame.opcode, frame.data
        if type(data) is not bytes:
            data = bytes(data)
        op: int
        if opcode is _TEXT or opcode is _BINARY:
            op = Op.MSG if opcode is _TEXT else Op.BINARY
            if not frame.fin:
                self._fragments, self._fragment_op = [data], op
                return True
        elif opcode is _CONT:
            if self._fragments is None:
                return True  # websockets already failed the connection (unexpected continuation)
            self._fragments.append(data)
            if not frame.fin:
                if len(self._fragments) >= MAX_FRAGMENTS:  # as websockets' own assembler
                    self._fragments = None
                    assert self.ws is not None
                    self.ws.fail(1009, "too many fragments")
                    return False
                return True
            data, self._fragments, op = b"".join(self._fragments), None, self._fragment_op
        elif opcode is _PONG:
            pongs = self._pongs
            if pongs and data in pongs:  # it answers its ping and every earlier one (as websockets)
                now = self.gw.loop.time()
                for payload in list(pongs):
                    fut = pongs.pop(payload)
                    if not fut.done():
                        fut.set_result(now)
                    if payload == data:
                        break
                if not pongs:
                    self._pongs = None
                link = self.gw.link
                if link is not None and not link.closed and self._core_knows:
                    link.send(Op.ALIVE, self.cid, b"")  # a pong proves the station alive, as a frame does
            return True
        else:
            return True  # pings are answered and closes handled by websockets
        if op == Op.MSG:
            try:
                data.decode()
            except UnicodeDecodeError as exc:
                assert self.ws is not None
                self.ws.fail(1007, f"{exc.reason} at position {exc.start}")
                return False
        self.frames_in += 1
        self._relay(op, data)
        return True

    def _relay(self, op: int, body: bytes) -> None:
        gw = self.gw
        link = gw.link
        if link is None or link.closed:
            return
        held = self._held
        if held is not None:  # keep the order: behind what was read while paused
            held.append((op, body))
            if len(held) >= _MAX_HELD:
                self._update_reading()
            return
        opening = self.ws is not None and self.ws.state is State.CONNECTING  # sent with the upgrade
        if opening or self.paused_by_core or not link.writable.is_set():
            self._held = deque([(op, body)])
            if not link.writable.is_set():
                self.waiting_for_link = True
                gw._waiting_link.add(self)
            self._update_reading()
            return
        link.send(op, self.cid, body)

    def release_held(self) -> None:
        """Relay what was read while relaying was paused, as far as the pause allows."""
        held, link = self._held, self.gw.link
        if link is None or link.closed:
            self._held = None
            return
        if self.ws is None or self.ws.state is State.CONNECTING:
            return  # frames sent with the upgrade wait for the core's ACCEPT (``decided``)
        while held:
            if self.paused_by_core or not link.writable.is_set():
                if not link.writable.is_set() and not self.waiting_for_link:
                    self.waiting_for_link = True
                    self.gw._waiting_link.add(self)
                self._update_reading()
                return
            op, body = held.popleft()
            link.send(op, self.cid, body)
        self._held = None
        self._update_reading()

    def _update_reading(self) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        # as websockets' max_queue did: go on reading (pongs, close frames) until 16 messages wait
        held = self._held
        read = not (self.write_paused or (held is not None and len(held) >= _MAX_HELD))
        if read != self._reading:
            self._reading = read
            if read:
                t.resume_reading()
            else:
                t.pause_reading()

    def core_pause(self) -> None:
        self.paused_by_core = True
        self._update_reading()

    def core_resume(self) -> None:
        self.paused_by_core = False
        self.release_held()
        self._update_reading()

    def link_writable(self) -> None:
        self.waiting_for_link = False
        self.release_held()
        self._update_reading()

    # --- to the station -----------------------------------------------------------------------
    def send_text(self, body: bytes) -> None:
        """A frame from the core: written now, or queued while the station's socket is full."""
        ws = self.ws
        if ws is None or ws.state is not State.OPEN:
            return
        if self.write_paused:
            if self.outbox is None:
                self.outbox = deque()
            self.outbox.append(body)
            return
        ws.send_text(body)
        self._flush()

    def _flush(self) -> None:
        ws, t = self.ws, self.transport
        if ws is None or t is None:
            return
        if self._upgrade is not None:
            return  # the core decides: a pong to a ping sent with the request waits for the 101
        for data in ws.data_to_send():
            if data:
                t.write(data)
            elif t.can_write_eof():
                try:
                    t.write_eof()
                except OSError:
                    t.abort()
            else:
                t.close()
        if ws.close_expected() and self._timer is None and not t.is_closing():
            self._timer = self.gw.loop.call_later(self.gw.settings.close_timeout_s, t.abort)

    async def ping(self) -> asyncio.Future[float]:
        """Send a ping; the future completes with the time its pong arrived (or a later ping's:
        a pong answers every earlier ping). At most four wait: the oldest is cancelled."""
        ws = self.ws
        if ws is None or ws.state is not State.OPEN:
            raise ConnectionClosed(None, None)
        payload = os.urandom(4)
        fut: asyncio.Future[float] = self.gw.loop.create_future()
        pongs = self._pongs
        if pongs is None:
            pongs = self._pongs = {}
        else:  # pings nobody waits for any more, or never answered (pong timeout off): not kept
            for done in [k for k, f in pongs.items() if f.done()]:
                del pongs[done]
            while len(pongs) >= _MAX_PINGS:
                pongs.pop(next(iter(pongs))).cancel()
        pongs[payload] = fut
        ws.send_ping(payload)
        self._flush()
        return fut

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.start_close(code, reason)

    def start_close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (or drop a connection that is not open yet)."""
        ws, t = self.ws, self.transport
        if ws is None or t is None or t.is_closing():
            return
        if ws.state is State.OPEN:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            # nothing more is relayed; read on, so that the station's close frame is seen. Answers
            # still waiting for the station's socket go out first, as websockets' send did
            outbox, self._held, self.outbox = self.outbox, None, None
            for body in outbox or ():
                ws.send_text(body)
            self.paused_by_core = self.waiting_for_link = False
            self.gw._waiting_link.discard(self)
            self._update_reading()
            ws.send_close(code, reason)
            self._flush()
        elif ws.state is State.CONNECTING:
            t.abort()
