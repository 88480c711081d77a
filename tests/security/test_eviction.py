"""Slow and silent sockets are evicted: 500 connections that never finish the handshake,
dribble half a request, or upgrade and then ignore pings; the server (``csms serve`` in a
subprocess, short timeouts) returns to its baseline of file descriptors while the clients
still hold their ends open. A station reconnecting while its old socket hangs takes over."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.conftest import MakeCsms
from tests.security.peers import V16, connect, heartbeat_ok
from tests.security.peers import raw_upgrade as _upgrade
from tests.services import free_port, wait_port

SILENT, DRIBBLING, UPGRADED_THEN_SILENT = 200, 150, 150


def _fds(pid: int) -> int:
    """The server's open sockets (database files and pipes that parts open as they start are not
    what eviction gives back)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """``csms serve`` with tight timeouts; yields (pid, ocpp port)."""
    port = free_port()
    env = {
        **os.environ, "CSMS_DB": str(tmp_path / "csms.sqlite3"), "CSMS_OCPP_PORT": str(port),
        "CSMS_API_PORT": str(free_port()), "CSMS_AUTO_REGISTER": "1", "CSMS_LOG_LEVEL": "error",
        "CSMS_PING_INTERVAL_S": "0.5", "CSMS_PING_TIMEOUT_S": "0.5", "CSMS_LIMITS_OPEN_TIMEOUT_S": "1",
        "CSMS_LIMITS_MAX_PRE_AUTH_PER_IP": "2000", "CSMS_LIMITS_ACCEPT_RATE": "0",
        "CSMS_DB_SYNCHRONOUS": "NORMAL",
    }
    proc = subprocess.Popen([sys.executable, "-m", "csms", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port)
        yield proc.pid, port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.returncode == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else ""


async def test_500_slow_or_silent_sockets_are_evicted_and_fds_return_to_baseline(
    server: tuple[int, int],
) -> None:
    pid, port = server
    await asyncio.sleep(0.3)
    baseline = _fds(pid)
    clients: list[socket.socket] = []
    try:
        for i in range(UPGRADED_THEN_SILENT):  # first: they live longest (ping, then close timeout)
            clients.append(await asyncio.to_thread(_upgrade, port, f"MUTE{i}"))
        for _ in range(SILENT):
            clients.append(socket.create_connection(("127.0.0.1", port)))
        for i in range(DRIBBLING):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(f"GET /ocpp/DRIP{i} HTTP/1.1\r\nHost: x\r\n".encode())
            clients.append(s)
        await asyncio.sleep(0.2)
        peak = _fds(pid)
        assert peak >= baseline + 450, (baseline, peak)  # the server really held them
        url = f"ws://127.0.0.1:{port}/ocpp"
        async with connect(url, "HEALTHY", V16) as ws:  # a real station is served meanwhile
            assert await heartbeat_ok(ws)
        deadline = time.monotonic() + 20
        for _ in range(100):  # poll the server's descriptor table
            if _fds(pid) <= baseline + 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        assert _fds(pid) <= baseline + 2, (baseline, peak, _fds(pid))
    finally:
        for s in clients:
            s.close()


async def test_reconnect_while_the_old_socket_hangs_takes_over_cleanly(make_csms: MakeCsms) -> None:
    app = await make_csms(auto_register=True, ping_interval_s=30)
    old = await asyncio.to_thread(_upgrade, app.ocpp_port, "HANG")
    try:
        await asyncio.sleep(0.1)
        first = app.registry.get("HANG")
        assert first is not None
        async with connect(app.ocpp_url, "HANG", V16) as ws:
            assert await heartbeat_ok(ws)
            current = app.registry.get("HANG")
            assert current is not None and current is not first and first.closed
            old.settimeout(10)
            data = b""
            while chunk := await asyncio.to_thread(old.recv, 4096):  # close frame, then EOF
                data += chunk
            assert data[:1] == b"\x88"  # the server sent a close frame to the old socket
            await asyncio.sleep(0.1)
            assert app.registry.get("HANG") is current and len(app.registry) == 1
            assert await heartbeat_ok(ws)
            assert app.service is not None and app.service.live["HANG"].connected
    finally:
        old.close()
