"""One station's OCPP-J session: the read loop, inbound dispatch and outbound calls.

This module owns every piece of RPC mechanics: message ids, the one-outstanding-call
rule, timeouts, schema validation in both directions and the mapping of failures to
CALLERRORs. Handlers only see validated payloads and return response payloads.
Inbound CALLs are served while one of our CALLs is pending (the directions cross).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from websockets.exceptions import ConnectionClosed

from csms.errors import (
    CallErrorReceived,
    CallQueueTimeout,
    CallTimeout,
    PayloadInvalid,
    ResponseInvalid,
    StationNotConnected,
    StoreUnavailable,
    UnknownAction,
)
from ocppj import framing, schemas
from ocppj.framing import ErrorKind
from ocppj.versions import OcppVersion

if TYPE_CHECKING:
    from csms.core.service import ChargingService
    from csms.metrics import Metrics

log = structlog.get_logger("csms.ocpp")

class Connection(Protocol):
    """What a session needs of its station's socket: a ``csms.gateway.core.GatewayConnection``,
    whether the socket is in this process (the in-process endpoint) or a gateway's. The
    endpoint holding the socket also keeps it alive (pings)."""

    on_alive: Callable[[], object] | None  # set by the session: called when a keepalive pong came

    @property
    def close_code(self) -> int | None: ...

    async def recv(self) -> str | bytes: ...

    def write_now(self, data: bytes) -> None:
        """Send a text frame now (never waits; dropped once the connection closed)."""

    async def send(self, message: str | bytes, *, text: bool | None = None) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


Handler = Callable[["StationSession", dict[str, Any]], Awaitable[dict[str, Any]]]
OnMessage = Callable[[str, str, str, str, str, Any, "bytes | str"], None]  # station id first
"""Called for every message: (station id, direction, action, message type, message id, payload,
frame text); one function shared by all sessions."""


class HandlerError(Exception):
    """Raised by a handler to answer with a specific CALLERROR kind."""

    def __init__(self, kind: ErrorKind, description: str) -> None:
        super().__init__(description)
        self.kind = kind
        self.description = description


_CHECKS: dict[OcppVersion, dict[str, tuple[Callable[[Any], bool], Callable[[Any], bool]]]] = {
    v: {} for v in OcppVersion
}  # per version: action -> (request is valid, response is valid), compiled on first use

_uid_counter = itertools.count(1)


def _next_uid() -> str:
    return f"c{next(_uid_counter):x}"


@dataclass(slots=True)
class _Pending:
    unique_id: str
    action: str
    future: asyncio.Future[framing.CallResult | framing.CallError] = field(repr=False)
    raw: bytes | str = b""  # the answer's frame text, once it came


class StationSession:
    """A live connection to one station; created by the server, registered by id."""

    def __init__(
        self,
        ws: Connection,
        station_id: str,
        version: OcppVersion,
        handlers: Mapping[str, Handler],
        service: ChargingService,
        metrics: Metrics,
        *,
        generation: int,
        call_timeout_s: float = 30.0,
        on_message: OnMessage | None = None,
    ) -> None:
        self.ws = ws
        self._write_now: Callable[[bytes], None] = ws.write_now
        self.station_id = station_id
        self.version = version
        self.handlers = handlers
        self.service = service
        self.metrics = metrics
        self.generation = generation
        self.call_timeout_s = call_timeout_s
        self.on_message = on_message
        self.connected_at = time.time()
        self.closed = False
        self._call_lock = asyncio.Lock()  # fair: calls go out in the order they came
        self._queued = 0  # calls holding or waiting for the lock
        self._queued_s = 0.0  # the sum of their timeouts: how long the last of them may wait at most
        self._pending: _Pending | None = None
        self._known_actions = schemas.actions(version)
        self._checks = _CHECKS[version]
        self._handled = metrics.handled_observer(version)
        self.log = log.bind(station_id=station_id, protocol=version.value)

    # --- inbound ------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve frames until the socket closes; every frame stamps the station's last-seen time
        (a float store on its ``LiveStation``; the service's write-behind persists it)."""
        recv, version = self.ws.recv, self.version
        live, wall_s = self.service.live.get(self.station_id), self.service.wall_s
        if live is not None:
            self.ws.on_alive = lambda: live.touch(wall_s())
        try:
            while True:
                raw = await recv()  # str for text frames (websockets checks UTF-8: 1007 if not)
                if live is not None:
                    live.seen_s = wall_s()
                try:
                    frame = framing.parse(raw, version)
                except framing.FrameError as exc:
                    del raw
                    await self._bad_frame(exc)
                    continue
                if isinstance(frame, framing.Call):
                    await self._on_call(frame, raw)
                else:
                    self._on_answer(frame, raw)
                # a quiet station's suspended coroutine would otherwise keep its last message
                # alive (~0.6 KiB, parsed and raw) until the next one
                del raw, frame
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            if self._pending is not None and not self._pending.future.done():
                self._pending.future.set_exception(StationNotConnected(self.station_id))

    async def _bad_frame(self, exc: framing.FrameError) -> None:
        self.metrics.frame_error(exc.reason)
        self.log.warning("bad frame", reason=exc.reason)
        if exc.reply is not None:
            await self._send_error(exc.reply, "?")

    async def _on_call(self, call: framing.Call, raw: bytes | str) -> None:
        action = call.action
        if self.on_message is not None:
            self.on_message(self.station_id, "in", action, "Call", call.unique_id, call.payload, raw)
        handler = self.handlers.get(action)
        if handler is None:
            if action in self._known_actions:
                await self._reply_error(call, ErrorKind.NOT_SUPPORTED, f"{action} is not served by a CSMS")
            else:
                call.action = "?"  # keep metric labels bounded: unknown names are not labels
                await self._reply_error(call, ErrorKind.NOT_IMPLEMENTED, f"Unknown action {action[:40]!r}")
            return
        checks = self._checks.get(action) or self._compile_checks(action)
        if not checks[0](call.payload):
            violation = schemas.validate(self.version, action, call.payload, response=False)
            if violation is not None:
                await self._reply_error(call, violation.kind, violation.message, path=violation.path)
                return
        started = time.perf_counter()
        try:
            response = await handler(self, call.payload)
        except HandlerError as exc:
            await self._reply_error(call, exc.kind, exc.description)
            return
        except StoreUnavailable as exc:
            self.log.error("store unavailable, not acknowledging", action=action, error=str(exc))
            await self._reply_error(call, ErrorKind.INTERNAL, "Storage unavailable, retry later")
            return
        except Exception:
            self.log.exception("handler failed", action=action, message_id=call.unique_id)
            await self._reply_error(call, ErrorKind.INTERNAL, "Internal error")
            return
        self._handled(action, time.perf_counter() - started)
        if not checks[1](response):
            violation = schemas.validate(self.version, action, response, response=True)
            if violation is not None:
                self.log.error("our response fails its schema", action=action, error=violation.message)
                await self._reply_error(call, ErrorKind.INTERNAL, "Internal error (invalid response)")
                return
        data = framing.encode_result(call.unique_id, response)
        self._write_now(data)
        if self.on_message is not None:
            self.on_message(self.station_id, "out", action, "CallResult", call.unique_id, response, data)

    def _compile_checks(self, action: str) -> tuple[Callable[[Any], bool], Callable[[Any], bool]]:
        pair = (
            schemas.checker(self.version, action, response=False),
            schemas.checker(self.version, action, response=True),
        )
        self._checks[action] = pair
        return pair

    async def _reply_error(
        self, call: framing.Call, kind: ErrorKind, description: str, *, path: str = ""
    ) -> None:
        details = {"path": path} if path else {}
        err = framing.CallError(call.unique_id, framing.code_for(kind, self.version), description, details)
        self.log.info("call rejected", action=call.action, message_id=call.unique_id, code=err.code)
        await self._send_error(err, call.action)

    async def _send_error(self, err: framing.CallError, action: str) -> None:
        self.metrics.call_error_sent(self.version, action, err.code)
        data = framing.encode_error(err)
        self._write_now(data)
        if self.on_message is not None:
            self.on_message(
                self.station_id, "out", action, "CallError", err.unique_id, [err.code, err.description], data
            )

    def _on_answer(self, frame: framing.CallResult | framing.CallError, raw: bytes | str) -> None:
        pending = self._pending
        if pending is None or pending.unique_id != frame.unique_id or pending.future.done():
            self.metrics.frame_error("unsolicited answer")
            self.log.warning("answer to no pending call ignored", message_id=frame.unique_id)
            return
        pending.raw = raw
        pending.future.set_result(frame)

    # --- outbound -----------------------------------------------------------------------
    async def call(
        self, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Send a CALL and return the validated response payload.

        One call is outstanding per station: the others wait their turn, in order. ``timeout``
        (default ``call_timeout_s``) covers sending and the station's answer, from the moment the
        call's turn came; the wait for its turn is bounded apart by the sum of the timeouts of the
        calls ahead of it plus its own (``CallQueueTimeout`` beyond that, nothing sent).

        Raises UnknownAction, PayloadInvalid (nothing sent), CallTimeout (CallQueueTimeout: nothing
        sent), CallErrorReceived, ResponseInvalid or StationNotConnected.
        """
        if action not in self._known_actions:
            raise UnknownAction(f"{action} is not an OCPP {self.version.value} action")
        violation = schemas.validate(self.version, action, payload, response=False)
        if violation is not None:
            where = f" at {violation.path}" if violation.path else ""
            raise PayloadInvalid(f"{violation.message}{where}")
        limit = self.call_timeout_s if timeout is None else timeout
        # the timeout runs from the moment this call has the station to itself: waiting for the
        # station's earlier calls is bounded apart (each of them takes at most its own timeout)
        queue_bound = self._queued_s + limit
        self._queued_s += limit
        self._queued += 1
        try:
            try:
                async with asyncio.timeout(queue_bound):
                    await self._call_lock.acquire()
            except TimeoutError:
                self.metrics.outbound(self.version, action, "queue_timeout")
                raise CallQueueTimeout(
                    f"{self.station_id}: {action} waited over {queue_bound:g}s for the calls queued ahead "
                    "of it; nothing was sent"
                ) from None
            try:
                answer, pending = await self._send_and_wait(action, payload, limit)
            finally:
                self._call_lock.release()
        finally:
            self._queued -= 1
            self._queued_s = self._queued_s - limit if self._queued else 0.0
        if self.on_message is not None:
            kind = "CallResult" if isinstance(answer, framing.CallResult) else "CallError"
            body = (answer.payload if isinstance(answer, framing.CallResult)
                    else [answer.code, answer.description])
            self.on_message(self.station_id, "in", action, kind, answer.unique_id, body, pending.raw)
        if isinstance(answer, framing.CallError):
            self.metrics.outbound(self.version, action, "call_error")
            raise CallErrorReceived(answer.code, answer.description, answer.details)
        violation = schemas.validate(self.version, action, answer.payload, response=True)
        if violation is not None:
            self.metrics.outbound(self.version, action, "invalid_response")
            raise ResponseInvalid(f"{action} response: {violation.message}")
        self.metrics.outbound(self.version, action, "ok")
        return answer.payload

    async def _send_and_wait(
        self, action: str, payload: dict[str, Any], limit: float
    ) -> tuple[framing.CallResult | framing.CallError, _Pending]:
        """Send the CALL (the caller holds the call lock) and wait ``limit`` seconds for its answer."""
        if self.closed:
            raise StationNotConnected(self.station_id)
        uid = _next_uid()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[framing.CallResult | framing.CallError] = loop.create_future()
        pending = self._pending = _Pending(uid, action, fut)
        try:
            async with asyncio.timeout(limit):
                data = framing.encode_call(uid, action, payload)
                await self.ws.send(data, text=True)
                if self.on_message is not None:
                    self.on_message(self.station_id, "out", action, "Call", uid, payload, data)
                return await fut, pending
        except TimeoutError:
            self.metrics.outbound(self.version, action, "timeout")
            raise CallTimeout(f"{self.station_id} did not answer {action} within {limit:g}s") from None
        except ConnectionClosed:
            raise StationNotConnected(self.station_id) from None
        finally:
            self._pending = None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = True
        await self.ws.close(code, reason)
