"""What an OCPP upgrade request tells, and the answers it may get: shared by every endpoint
(the in-process one and gateway processes), which hand the core an ``Upgrade`` and get back
``Admitted`` or ``Refused`` (``csms.ocpp.server.OcppServer.decide``)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from websockets.datastructures import Headers

from csms.security.station_auth import Refusal
from csms.security.tls import PeerCertificate
from ocppj.versions import OcppVersion

SUBPROTOCOLS = [OcppVersion.V201.value, OcppVersion.V16.value]  # preferred first
MAX_STATION_ID = 48


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What an upgrade request tells about a station, wherever its socket ends."""

    path: str
    offered: list[str]  # subprotocols, in the client's order
    authorization: list[str]  # the Authorization header values
    ip: str
    tls: bool
    peer: PeerCertificate | None = None  # the verified client certificate, if any


@dataclass(frozen=True, slots=True)
class Admitted:
    station_id: str
    version: OcppVersion


@dataclass(frozen=True, slots=True)
class Refused:
    refusal: Refusal
    retry_after: int | None = None
    www_authenticate: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The response headers that go with the refusal."""
        out = {}
        if self.retry_after is not None:
            out["Retry-After"] = str(self.retry_after)
        if self.www_authenticate is not None:
            out["WWW-Authenticate"] = self.www_authenticate
        return out


def offered_subprotocols(headers: Headers) -> list[str]:
    """The subprotocols a client offered, in its order (the header may repeat or hold a list)."""
    return [p.strip() for h in headers.get_all("Sec-WebSocket-Protocol") for p in h.split(",")]


def station_id_from_path(path: str, prefix: str) -> str | None:
    """The station id in ``path`` under ``prefix``, or None when the path is not valid."""
    raw_path = urlsplit(path).path
    head = prefix.rstrip("/") + "/"
    if not raw_path.startswith(head):
        return None
    raw = raw_path[len(head):]
    if not raw or "/" in raw:
        return None
    station_id = unquote(raw)
    if len(station_id) > MAX_STATION_ID or not station_id.isprintable() or "/" in station_id:
        return None
    return station_id
