"""Stations through a gateway: a core with a gateway socket and a real ``Gateway`` (real Unix
socket, real WebSockets) in front of it. A module that imports ``csms_direct_or_via_gateway``
runs its tests that use ``csms`` both directly and through a gateway."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from csms.app import CsmsApp, running
from csms.gateway.process import Gateway, GatewaySettings
from tests.conftest import make_settings


def socket_dir() -> str:
    """A short directory for Unix sockets (their paths are limited to ~107 bytes)."""
    return tempfile.mkdtemp(prefix="csms-gw-")


@asynccontextmanager
async def gateway_for(core_socket: str, **options: Any) -> AsyncIterator[Gateway]:
    """A gateway on a free loopback port, linked to ``core_socket``."""
    gw = Gateway(GatewaySettings(core_socket=core_socket, host="127.0.0.1", port=0, **options))
    await gw.start()
    relink = asyncio.create_task(gw.serve_forever())
    try:
        yield gw
    finally:
        relink.cancel()
        await asyncio.gather(relink, return_exceptions=True)
        await gw.stop()


class ViaGateway:
    """A running CSMS whose ``ocpp_url`` leads through a gateway (everything else is the app's)."""

    def __init__(self, app: CsmsApp, gateway: Gateway) -> None:
        self._app = app
        self.gateway = gateway
        self.ocpp_port = gateway.port
        self.ocpp_url = f"ws://127.0.0.1:{gateway.port}{app.settings.ocpp_path}"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)


@pytest.fixture(name="csms", params=["direct", "gateway"])
async def csms_direct_or_via_gateway(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """A running CSMS (auto-registration on), reached directly or through a gateway process."""
    if request.param == "direct":
        async with running(make_settings(tmp_path)) as app:
            yield app
        return
    sockets = socket_dir()
    try:
        path = str(Path(sockets) / "core.sock")
        async with running(make_settings(tmp_path, gateway_socket=path)) as app, gateway_for(path) as gw:
            yield ViaGateway(app, gw)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
