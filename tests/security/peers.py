"""Minimal stations for the security tests, on plain ``websockets``: connect with or without
Basic auth and TLS, send a CALL and read its answer, and answer CSMS-initiated CALLs."""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

V16, V201 = "ocpp1.6", "ocpp2.0.1"
VERSIONS = [V16, V201]
_ids = itertools.count(1)


def raw_upgrade(port: int, station_id: str) -> socket.socket:
    """A raw socket that completes the WebSocket handshake and then never reads or writes again."""
    return upgrade_with(port, station_id)[0]


def upgrade_with(port: int, station_id: str, early: bytes = b"") -> tuple[socket.socket, bytes]:
    """A raw socket after the WebSocket handshake, and what the server sent after its 101.

    ``early`` goes out in the same write as the upgrade request, before the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((
        f"GET /ocpp/{station_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    ).encode() + early)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(4096)
        assert chunk, "server closed during the handshake"
        received += chunk
    head, rest = received.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head[:80]
    return sock, rest


def basic_header(user: str | bytes, password: str | bytes) -> dict[str, str]:
    raw = (user.encode() if isinstance(user, str) else user) + b":" + (
        password.encode() if isinstance(password, str) else password
    )
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def connect(
    url: str, station_id: str, subprotocol: str, *, password: str | bytes | None = None,
    user: str | bytes | None = None, tls: ssl.SSLContext | None = None, **kwargs: Any,
) -> websockets.connect:
    headers = basic_header(station_id if user is None else user, password) if password is not None else None
    return websockets.connect(
        f"{url}/{station_id}", subprotocols=[Subprotocol(subprotocol)], additional_headers=headers,
        ssl=tls, open_timeout=5, **kwargs,
    )


async def refusal(url: str, station_id: str, subprotocol: str, **kwargs: Any) -> int:
    """The HTTP status of a refused upgrade (fails the test if the upgrade succeeds)."""
    try:
        async with connect(url, station_id, subprotocol, **kwargs):
            pass
    except websockets.InvalidStatus as exc:
        return int(exc.response.status_code)
    raise AssertionError(f"{station_id} was accepted")


async def call(ws: ClientConnection, action: str, payload: dict[str, Any], timeout: float = 5) -> list[Any]:
    """Send a CALL and return its CALLRESULT/CALLERROR frame (CSMS CALLs in between are not expected)."""
    uid = f"t{next(_ids)}"
    await ws.send(orjson.dumps([2, uid, action, payload]).decode())
    frame = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
    assert frame[1] == uid, frame
    return list(frame)


async def heartbeat_ok(ws: ClientConnection) -> bool:
    frame = await call(ws, "Heartbeat", {})
    return frame[0] == 3 and "currentTime" in frame[2]


Answer = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any] | None]]


async def serve_calls(
    ws: ClientConnection, answer: Answer, received: list[tuple[str, dict[str, Any]]]
) -> None:
    """Answer every CSMS CALL with ``answer(action, payload)`` (None: stay silent) until closed."""
    try:
        async for raw in ws:
            frame = orjson.loads(raw)
            if frame[0] != 2:
                continue
            received.append((frame[2], frame[3]))
            reply = await answer(frame[2], frame[3])
            if reply is not None:
                await ws.send(orjson.dumps([3, frame[1], reply]).decode())
    except websockets.ConnectionClosed:
        pass


async def assert_over_the_pre_auth_cap(port: int, url: str, station_id: str) -> None:
    """A new TCP connection is aborted at once, and a WebSocket upgrade fails."""
    extra = socket.create_connection(("127.0.0.1", port))
    extra.settimeout(2)
    try:
        assert await asyncio.to_thread(extra.recv, 1) == b""  # aborted at once
    except ConnectionResetError:
        pass
    finally:
        extra.close()
    with pytest.raises((OSError, websockets.InvalidMessage, EOFError)):
        async with connect(url, station_id, V16):
            pass
