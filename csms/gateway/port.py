"""What the gateway side needs of the core's OCPP server: the ``SessionHost`` port.

The gateway package is the WebSocket transport (``csms gateway`` processes, the core's end of
their links, the in-process endpoint). It sits in front of the OCPP adapter and uses its
sans-I/O parts (the upgrade's ``Upgrade``/``Admitted``/``Refused``, the session's
``Connection``), but it never imports the OCPP server: like a WebSocket library that defines
the handler it calls, it defines here what it calls back into. ``csms.ocpp.server.OcppServer``
implements this port without importing the gateway; the composition root (``csms.app``)
builds the in-process listeners (``csms.gateway.local``) and the gateway processes' hub
(``csms.gateway.core.GatewayHub``) around the server.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol

from csms.ocpp.handshake import Admitted, Refused, Upgrade
from csms.ocpp.session import Connection
from ocppj.versions import OcppVersion


class SessionHost(Protocol):
    """Decides upgrades and serves the sessions of admitted stations."""

    @property
    def stopping(self) -> bool:
        """True once the server stops: upgrades still coming in are answered 503."""
        ...

    async def decide(self, up: Upgrade) -> Admitted | Refused:
        """Whether this upgrade request may become a session."""
        ...

    async def run_session(
        self, conn: Connection, station_id: str, version: OcppVersion, *, remote: str | None, tls: bool
    ) -> None:
        """Serve an admitted connection until it closes."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background until done or the server stops."""
        ...
