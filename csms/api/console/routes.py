"""The console's routes: the page, its static files, login/logout, station actions, the live socket.

Everything else the console shows comes from the operator API (``/api/...``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import parse_qs

import orjson
import structlog
from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection

from csms.api.audit import audited
from csms.api.auth import guard_of
from csms.api.console.auth import CONSOLE_HEADER, COOKIE, same_origin, session_value
from csms.api.console.live import Client, ConsoleHub
from csms.api.context import ApiContext
from csms.api.errors import ApiError, from_control_error
from csms.api.outbound import absent
from csms.core.commands import (
    OPERATOR_PROFILE_ID,
    ChargingLimit,
    CommandKind,
    CommandResult,
    ConfigurationReport,
    ResetKind,
)
from csms.errors import ControlError, PayloadInvalid, UnknownAction
from csms.ocpp.control import OcppControl

log = structlog.get_logger(__name__)

STATIC = Path(__file__).parent / "static"
_MEDIA = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}
_ASSETS = {p.name: p for p in STATIC.iterdir() if p.suffix in _MEDIA}
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
SESSION_MAX_AGE_S = 12 * 3600
LOGIN_FAILURE_DELAY_S = 0.5
WS_UNAUTHORIZED = 4401


class ActionIn(BaseModel):
    """Parameters of a console action; which ones matter depends on the action."""

    evse_id: int = Field(1, ge=0, le=1000)
    connector_id: int = Field(1, ge=0, le=100)
    id_tag: str | None = Field(None, min_length=1, max_length=36)
    tx_id: str | None = Field(None, min_length=1, max_length=36)
    hard: bool = False
    operative: bool = True
    message: str | None = Field(None, min_length=1, max_length=64)
    limit_a: float | None = Field(None, ge=0, le=2000)


T = TypeVar("T")
Answer = CommandResult | ConfigurationReport
Intent = Callable[[OcppControl, str, ActionIn], Awaitable[Answer]]


def _need(value: T | None, name: str) -> T:
    if value is None:
        raise ValueError(f"{name} is required")
    return value


def _request_id() -> int:
    return int(time.time()) % 2_000_000_000


INTENTS: dict[str, tuple[CommandKind, Intent]] = {
    "remote-start": (
        CommandKind.REMOTE_START,
        lambda c, sid, a: c.remote_start(
            sid, _need(a.id_tag, "id_tag"), evse_id=a.evse_id, remote_start_id=_request_id()
        ),
    ),
    "remote-stop": (CommandKind.REMOTE_STOP, lambda c, sid, a: c.remote_stop(sid, _need(a.tx_id, "tx_id"))),
    "reset": (
        CommandKind.RESET, lambda c, sid, a: c.reset(sid, ResetKind.HARD if a.hard else ResetKind.SOFT),
    ),
    "unlock": (
        CommandKind.UNLOCK, lambda c, sid, a: c.unlock(sid, evse_id=a.evse_id, connector_id=a.connector_id),
    ),
    "availability": (
        CommandKind.CHANGE_AVAILABILITY,
        lambda c, sid, a: c.change_availability(sid, operative=a.operative, evse_id=a.evse_id),
    ),
    "trigger": (
        CommandKind.TRIGGER_MESSAGE,
        lambda c, sid, a: c.trigger_message(sid, _need(a.message, "message"), evse_id=a.evse_id or None),
    ),
    "limit": (
        CommandKind.SET_LIMIT,
        lambda c, sid, a: c.set_limit(sid, a.evse_id, ChargingLimit(amps=_need(a.limit_a, "limit_a"))),
    ),
    "clear-limit": (CommandKind.CLEAR_LIMIT, lambda c, sid, a: c.clear_limit(sid, OPERATOR_PROFILE_ID)),
    "configuration": (
        CommandKind.READ_CONFIGURATION, lambda c, sid, a: c.read_configuration(sid, request_id=_request_id()),
    ),
}


def _shown(answer: Answer) -> dict[str, Any]:
    """The station's answer as the console shows it: status and reason, or 1.6 configuration keys."""
    if isinstance(answer, ConfigurationReport):
        if answer.keys is None:
            return {"status": answer.status.value}
        keys = [
            {"key": k.key, "readonly": k.readonly, **({"value": k.value} if k.value is not None else {})}
            for k in answer.keys
        ]
        return {"configurationKey": keys, **({"unknownKey": list(answer.unknown)} if answer.unknown else {})}
    shown: dict[str, Any] = {"status": answer.status.value}
    if answer.detail is not None:
        shown["statusInfo"] = {"reasonCode": answer.detail}
    return shown


def _page(name: str, status_code: int = 200, message: str = "") -> HTMLResponse:
    html = (STATIC / name).read_text(encoding="utf-8")
    if message:  # fixed texts only: never user input
        html = html.replace("<!--message-->", f'<p class="form-error" role="alert">{message}</p>')
    return HTMLResponse(html, status_code, headers=_PAGE_HEADERS)


def _error(status: int, code: str, detail: str, **extra: Any) -> NoReturn:
    raise ApiError(status, code, detail, **extra)


def _signed_in(conn: HTTPConnection) -> bool:
    """True when no token is needed, or the request carries one (header or console cookie)."""
    guard = guard_of(conn)
    return not guard.required or guard.role_of(conn) is not None


def console_router(ctx: ApiContext) -> APIRouter:
    """Routes of the console for the API app serving ``ctx``; starts recording OCPP messages.

    ``ctx.record_messages = False`` (before the app is created) keeps the OCPP server from
    publishing a ``MessageExchanged`` per message for the console. The hub is ``ctx.console``.
    """
    hub = ConsoleHub(ctx, record_messages=ctx.record_messages)
    ctx.console = hub
    settings = ctx.settings
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def index(request: Request) -> Response:
        if not _signed_in(request):
            return RedirectResponse("/login", 303)
        return _page("index.html")

    @router.get("/login")
    async def login_page(request: Request) -> Response:
        if not guard_of(request).required:
            return RedirectResponse("/", 303)
        return _page("login.html")

    @router.post("/login")
    async def login(request: Request) -> Response:
        """Exchange the operator token for the session cookie; failures count like the API's."""
        guard = guard_of(request)
        if not guard.required:
            return RedirectResponse("/", 303)
        ip, now = (request.client.host if request.client else "?"), guard.clock()
        if guard.failures.exceeded(ip, now):
            return _page("login.html", 429, "Too many failed attempts: wait a minute.")
        body = await request.body()
        token = (parse_qs(body[:4096].decode("utf-8", "replace")).get("token") or [""])[0]
        operator = settings.api_token
        if not token or not operator or not hmac.compare_digest(token.encode(), operator.encode()):
            guard.failures.add(ip, now)
            await asyncio.sleep(LOGIN_FAILURE_DELAY_S)
            return _page("login.html", 401, "That token is not valid.")
        response = RedirectResponse("/", 303)
        response.set_cookie(
            COOKIE, session_value(operator), max_age=SESSION_MAX_AGE_S, path="/",
            httponly=True, samesite="strict", secure=request.url.scheme == "https",
        )
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        response = RedirectResponse("/login" if guard_of(request).required else "/", 303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @router.get("/console/static/{name}")
    async def static(name: str) -> Response:
        path = _ASSETS.get(name)
        if path is None:
            raise HTTPException(404, "no such file")
        return FileResponse(path, media_type=_MEDIA[path.suffix], headers={"Cache-Control": "no-cache"})

    @router.post("/console/api/stations/{station_id}/actions/{intent}", dependencies=[Depends(audited)])
    async def action(station_id: str, intent: str, body: ActionIn, request: Request) -> Response:
        """Run an operator action through ``OcppControl``; the answer is the station's, as shown.

        The caller is checked (and the action audited) by ``audited``; errors have the API's shape."""
        if CONSOLE_HEADER not in request.headers:  # a cross-site form cannot send it
            _error(403, "forbidden", f"console actions need the {CONSOLE_HEADER} header")
        spec = INTENTS.get(intent)
        if spec is None:
            _error(404, "not_found", f"unknown action {intent!r}; known: {', '.join(INTENTS)}")
        kind, run = spec
        name = ctx.control.action_name(station_id, kind)
        if name is None:
            raise await absent(ctx, station_id)
        try:
            answer = await run(ctx.control, station_id, body)
        except (ValueError, UnknownAction, PayloadInvalid) as exc:
            _error(400, "invalid_payload", f"{name}: {exc}", action=name)
        except ControlError as exc:
            raise from_control_error(exc, action=name) from None
        log.info("console action", station_id=station_id, action=name)
        return JSONResponse({"action": name, "response": _shown(answer)})

    @router.websocket("/console/ws")
    async def live(ws: WebSocket) -> None:
        """Push station views, summaries and the watched station's detail; see ``live.py``."""
        if not same_origin(ws):
            await ws.close(1008)  # before accept: the browser sees a refused handshake
            return
        await ws.accept()
        if not _signed_in(ws):
            await ws.close(WS_UNAUTHORIZED, "login required")
            return
        client = hub.add()
        tasks = [
            asyncio.create_task(_write(ws, hub, client), name="console-write"),
            asyncio.create_task(_read(ws, hub, client), name="console-read"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if exc is not None and not isinstance(exc, WebSocketDisconnect):
                    log.error("console socket failed", exc_info=exc)
        finally:
            hub.remove(client)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await ws.close()

    return router


def _json(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame, option=orjson.OPT_UTC_Z).decode()


async def _write(ws: WebSocket, hub: ConsoleHub, client: Client) -> None:
    """Send the snapshot, then at most one batch of frames per flush interval."""
    hello = {"type": "hello", "auth": guard_of(ws).required, "interval_s": hub.flush_interval_s}
    await ws.send_text(_json(hello))
    await ws.send_text(_json(await hub.snapshot()))
    while True:
        await client.wake.wait()
        await asyncio.sleep(hub.flush_interval_s)  # let marks pile up: this is the coalescing
        client.wake.clear()
        for frame in await hub.drain(client):
            await ws.send_text(_json(frame))


async def _read(ws: WebSocket, hub: ConsoleHub, client: Client) -> None:
    """Follow the browser's ``{"watch": station_id | null}`` and ``{"feeders": bool}`` requests."""
    async for text in ws.iter_text():
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        if isinstance(msg, dict) and "watch" in msg:
            watch = msg["watch"]
            client.watch_station(watch if isinstance(watch, str) and 0 < len(watch) <= 64 else None)
        if isinstance(msg, dict) and "feeders" in msg:
            hub.follow_feeders(client, msg["feeders"] is True)
