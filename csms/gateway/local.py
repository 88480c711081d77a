"""The in-process OCPP endpoint: a gateway inside the core's process, linked in memory.

``csms serve`` holds stations' WebSockets with the same code as ``csms gateway`` (one lean
``csms.gateway.station.StationProtocol`` per station, ADR 0005); only the link differs. A
``LoopbackLink`` pair hands each frame to the core's ``StationLink`` with a function call, where
a gateway process writes it to a Unix socket. So both deployments share one WebSocket layer:
the same upgrade checks, limits, timeouts, keepalive and flow control, and what a session sees
(a ``GatewayConnection``) is the same whichever process holds the socket.

The composition root (``csms.app``) makes one per listener (ws://, wss://) and hands them to
the OCPP server (``csms.ocpp.server.Listener``), which is their ``SessionHost``.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from csms.gateway.core import StationLink
from csms.gateway.link import loopback_pair
from csms.gateway.port import SessionHost
from csms.gateway.process import Gateway, GatewaySettings
from csms.security.admission import Admission

log = structlog.get_logger("csms.ocpp")


class LocalEndpoint:
    """One listener (ws:// or wss://) of the core's own OCPP endpoint."""

    def __init__(
        self, host: SessionHost, settings: GatewaySettings, *, admission: Admission,
        on_pings: Callable[[int], object], on_timeout: Callable[[], object],
        path_prefix: str, max_inbox: int,
    ) -> None:
        """``admission`` and the keepalive counters are the core's (its limits and its /metrics)."""
        self.gateway = Gateway(settings, admission=admission, on_pings=on_pings, on_timeout=on_timeout)
        self.link = StationLink(host, closing=lambda: host.stopping, local=True, max_inbox=max_inbox)
        gw = self.gateway
        core_end, gateway_end = loopback_pair(self.link.on_frame, self.link.on_lost,
                                              gw.on_core_frame, gw.on_core_lost)
        self.link.protocol = core_end
        gw.attach(gateway_end)
        self.path_prefix = path_prefix

    @property
    def port(self) -> int:
        return self.gateway.port

    @property
    def tls(self) -> bool:
        return self.gateway.settings.tls_context is not None

    async def start(self) -> None:
        s = self.gateway.settings
        scheme = "wss" if s.tls_context is not None else "ws"
        try:
            await self.gateway.listen()
        except OSError as exc:  # name the listener that failed (ws:// or wss://)
            raise OSError(exc.errno, f"{scheme}://{s.host}:{s.port}: {exc.strerror or exc}") from None
        log.info("ocpp endpoint listening", url=f"{scheme}://{s.host}:{self.port}{self.path_prefix}/{{id}}")

    def stop_accepting(self) -> None:
        """New upgrades are answered 503 from now on; the listening socket closes."""
        self.gateway.stop_accepting()

    async def stop(self) -> None:
        """Close the stations still connected (1001), wait up to the close timeout, unlink."""
        await self.gateway.stop()
