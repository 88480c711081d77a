"""One OCPP-J connection from the charger's side: our CALLs out, the CSMS's CALLs in.

``Link.call`` sends one CALL at a time (the charger's sender task is its only caller)
and returns the validated CALLRESULT payload. ``Link.serve_forever`` reads frames: it
completes our pending call and answers CSMS-initiated CALLs *while ours is pending*
(the directions cross). Everything sent and received is checked against the official
schemas; every violation is counted on the :class:`~simulators.metrics.Recorder`.

Inbound calls go to a synchronous ``serve(action, payload)`` that returns the response
payload and optionally a follow-up callable, invoked once the response is sent (to
queue a triggered message, start firmware progress...). Serving never awaits our own
call, so the reader can never deadlock on itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from ocppj import framing, schemas
from ocppj.framing import ErrorKind
from ocppj.versions import OcppVersion
from simulators.metrics import Recorder

log = structlog.get_logger("simulators")

FollowUp = Callable[[], None]


@dataclass(frozen=True, slots=True)
class Served:
    """The answer to an inbound CALL and what to do after sending it."""

    payload: dict[str, Any]
    after: FollowUp | None = None


class Refused(Exception):
    """Raised by a ``serve`` function to answer with a CALLERROR of ``kind``."""

    def __init__(self, kind: ErrorKind, description: str) -> None:
        super().__init__(description)
        self.kind = kind
        self.description = description


Serve = Callable[[str, dict[str, Any]], Served]


class LinkClosed(Exception):
    """The connection closed before our call was answered."""


class CallFailed(Exception):
    """Our call got no usable answer: a CALLERROR, an invalid response or a timeout."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


_ids = itertools.count(1)


class Link:
    """An open WebSocket to the CSMS speaking one OCPP version."""

    __slots__ = (
        "_known", "_late", "_pending", "_serve", "call_timeout_s", "last_call_at",
        "recorder", "version", "ws",
    )

    def __init__(
        self, ws: ClientConnection, version: OcppVersion, serve: Serve, recorder: Recorder,
        *, call_timeout_s: float = 30.0,
    ) -> None:
        self.ws = ws
        self.version = version
        self.recorder = recorder
        self.call_timeout_s = call_timeout_s
        self.last_call_at = 0.0
        self._serve = serve
        self._known = schemas.actions(version)
        self._pending: tuple[str, str, float, asyncio.Future[dict[str, Any]]] | None = None
        self._late = ""  # id of the call that timed out last: its answer may still come

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send a CALL and wait for its answer. Raises CallFailed or LinkClosed."""
        if self._pending is not None:
            raise RuntimeError(f"{action}: a call is already outstanding")
        violation = schemas.validate(self.version, action, payload, response=False)
        if violation is not None:
            self.recorder.call_failed(action, f"invalid_outgoing:{action}")
            log.error("simulator built an invalid payload", action=action, error=violation.message,
                      path=violation.path)
            raise CallFailed("invalid_outgoing", violation.message)
        uid = f"{next(_ids):x}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending = (uid, action, time.perf_counter(), fut)
        self.last_call_at = time.monotonic()
        try:
            await self.ws.send(framing.dump_call(uid, action, payload))
            async with asyncio.timeout(self.call_timeout_s):
                return await fut
        except ConnectionClosed:
            raise LinkClosed(action) from None
        except TimeoutError:
            self._late = uid
            self.recorder.call_failed(action, f"timeout:{action}")
            raise CallFailed("timeout", f"{action} not answered in {self.call_timeout_s:g}s") from None
        finally:
            self._pending = None

    async def serve_forever(self) -> None:
        """Read frames until the connection closes; then fail the pending call, if any."""
        try:
            while True:
                raw = await self.ws.recv()
                await self._on_frame(raw)
        except ConnectionClosed:
            pass
        finally:
            pending = self._pending
            if pending is not None and not pending[3].done():
                pending[3].set_exception(LinkClosed(pending[1]))

    async def _on_frame(self, raw: str | bytes) -> None:
        try:
            frame = framing.parse(raw, self.version)
        except framing.FrameError as exc:
            self.recorder.error(f"bad_frame:{exc.reason}")
            log.warning("bad frame from CSMS", reason=exc.reason, frame=str(raw)[:200])
            if exc.reply is not None:
                await self._send(framing.dump_error(exc.reply))
            return
        if isinstance(frame, framing.Call):
            await self._on_call(frame)
        else:
            self._on_answer(frame)

    def _on_answer(self, frame: framing.CallResult | framing.CallError) -> None:
        pending = self._pending
        if pending is None or pending[0] != frame.unique_id or pending[3].done():
            if frame.unique_id == self._late:
                self.recorder.error("late_answer")
                return
            self.recorder.error("bad_frame:unsolicited answer")
            log.warning("answer to no pending call", message_id=frame.unique_id)
            return
        _, action, sent_at, fut = pending
        if isinstance(frame, framing.CallError):
            self.recorder.call_failed(action, f"call_error:{frame.code}")
            log.warning("CSMS answered with a CALLERROR", action=action, code=frame.code,
                        description=frame.description)
            fut.set_exception(CallFailed("call_error", f"{frame.code} {frame.description}"))
            return
        violation = schemas.validate(self.version, action, frame.payload, response=True)
        if violation is not None:
            self.recorder.call_failed(action, f"invalid_response:{action}")
            log.warning("CSMS response fails its schema", action=action, error=violation.message,
                        path=violation.path, payload=frame.payload)
            fut.set_exception(CallFailed("invalid_response", violation.message))
            return
        self.recorder.call_done(action, time.perf_counter() - sent_at)
        fut.set_result(frame.payload)

    async def _on_call(self, call: framing.Call) -> None:
        action = call.action
        if action not in self._known:
            self.recorder.error("unknown_inbound_action")
            await self._refuse(call, ErrorKind.NOT_IMPLEMENTED, f"Unknown action {action[:40]!r}")
            return
        self.recorder.inbound[action] += 1
        violation = schemas.validate(self.version, action, call.payload, response=False)
        if violation is not None:
            self.recorder.error(f"invalid_inbound_call:{action}")
            log.warning("CSMS call fails its schema", action=action, error=violation.message,
                        path=violation.path, payload=call.payload)
            await self._refuse(call, violation.kind, violation.message)
            return
        try:
            served = self._serve(action, call.payload)
        except Refused as exc:
            if exc.kind in (ErrorKind.NOT_SUPPORTED, ErrorKind.NOT_IMPLEMENTED):
                self.recorder.inbound_unsupported[action] += 1
            await self._refuse(call, exc.kind, exc.description)
            return
        except Exception:
            self.recorder.error(f"simulator_bug:{action}")
            log.exception("serving a CSMS call failed", action=action)
            await self._refuse(call, ErrorKind.INTERNAL, "Internal error")
            return
        violation = schemas.validate(self.version, action, served.payload, response=True)
        if violation is not None:
            self.recorder.error(f"invalid_outgoing:{action}")
            log.error("simulator built an invalid response", action=action, error=violation.message)
            await self._refuse(call, ErrorKind.INTERNAL, "Internal error (invalid response)")
            return
        await self._send(framing.dump_result(call.unique_id, served.payload))
        if served.after is not None:
            served.after()

    async def _refuse(self, call: framing.Call, kind: ErrorKind, description: str) -> None:
        err = framing.CallError(call.unique_id, framing.code_for(kind, self.version), description[:255], {})
        await self._send(framing.dump_error(err))

    async def _send(self, text: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(text)
