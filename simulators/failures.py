"""Why stations could not connect, in words.

:func:`classify` turns a failed connection attempt into a short *kind* (``http_404``,
``tls_verify``, ``refused``...) that the recorder counts; :func:`explain` groups the counted
kinds by cause, each with a hint on what to change. The end summary and the JSON report
(``connect_failure_causes``) show the groups.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

_CLIENT_CERT_ALERTS = ("CERTIFICATE", "UNKNOWN_CA", "ACCESS_DENIED", "DECRYPT_ERROR", "HANDSHAKE_FAILURE")


def classify(exc: BaseException, *, tls: bool = False) -> str:
    """The failure kind of one connection attempt (its cause chain included).

    ``tls``: the attempt was to a ``wss://`` URL. A TLS 1.3 server checks the client certificate
    after the client considers the handshake done, so a rejected certificate often shows only
    as the connection ending before the HTTP answer (``tls_closed_before_http``)."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, InvalidStatus):
            return f"http_{e.response.status_code}"
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            return "tls_verify"
        if isinstance(e, ssl.SSLError):
            reason = (e.reason or type(e).__name__).lower()
            return f"tls_alert:{reason}" if "ALERT" in reason.upper() else f"tls:{reason}"
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return "refused"
        if isinstance(e, TimeoutError):
            return "timeout"
        if isinstance(e, socket.gaierror):
            return "dns"
    first = chain[0]
    if tls and any(isinstance(e, EOFError | ConnectionResetError) for e in chain):
        return "tls_closed_before_http"
    if isinstance(first, InvalidHandshake | InvalidURI):
        return f"handshake:{type(first).__name__}"
    if isinstance(first, OSError):
        return f"os_error:{first.errno}"
    return f"other:{type(first).__name__}"


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in out and len(out) < 8:
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


@dataclass(frozen=True, slots=True)
class Cause:
    """A group of failure kinds with one explanation."""

    name: str
    title: str
    hint: str


UNKNOWN_STATION = Cause("unknown_station", "unknown station (HTTP 404)",
                        "register the stations (csms-sim --register API_URL --api-token TOKEN ...) or enable "
                        "auto-registration on the CSMS")
BAD_PASSWORD = Cause("bad_password", "wrong or missing password (HTTP 401)",
                     "give the passwords the CSMS has for the stations (--passwords FILE or "
                     "--password-pattern); csms-sim --register sets them")
FORBIDDEN = Cause("forbidden", "refused for the station's security profile (HTTP 403)",
                  "profile 3 needs wss:// and a client certificate whose CN is the station id "
                  "(--client-ca-cert/--client-ca-key or --client-cert-dir); profile 2 needs wss://")
OVERLOADED = Cause("overloaded", "the CSMS is shedding load (HTTP 503/429)",
                   "lower --ramp-up, or lift the CSMS's admission limits for load tests")
SERVER_CERT = Cause("server_certificate", "the CSMS's TLS certificate is not trusted",
                    "give the CA bundle that signed the CSMS's certificate with --ca-file, and use a "
                    "host name the certificate names")
CLIENT_CERT = Cause("client_certificate", "the CSMS ended the TLS connection before answering (a "
                    "rejected or missing client certificate)",
                    "check the client certificates (--client-ca-cert/--client-ca-key or --client-cert-dir) "
                    "and that the CSMS trusts their CA")
TLS = Cause("tls", "TLS failed",
            "does the URL point at a TLS port (wss://) and do both sides allow TLS 1.2+?")
REFUSED = Cause("refused", "connection refused", "is the CSMS running at {urls}?")
TIMEOUT = Cause("timeout", "no answer in time",
                "check the host, port and firewall; an overloaded CSMS answers late too")
DNS = Cause("dns", "host name not found", "check the host name in {urls}")
HANDSHAKE = Cause("handshake", "not an OCPP WebSocket endpoint",
                  "check the URL's path (e.g. ws://host:9000/ocpp; the station id is appended)")
HTTP_OTHER = Cause("http_other", "the CSMS refused the WebSocket upgrade", "see the CSMS's log for why")
OTHER = Cause("other", "network error", "see the failure kinds for the errno")

_HTTP = {"http_404": UNKNOWN_STATION, "http_401": BAD_PASSWORD, "http_403": FORBIDDEN,
         "http_503": OVERLOADED, "http_429": OVERLOADED}


def cause_of(kind: str) -> Cause:
    """The cause of a failure kind (``kind@url`` when a run has several URLs)."""
    kind = kind.split("@", 1)[0]
    if kind in _HTTP:
        return _HTTP[kind]
    if kind.startswith("http_"):
        return HTTP_OTHER
    if kind == "tls_verify":
        return SERVER_CERT
    if kind == "tls_closed_before_http":
        return CLIENT_CERT
    if kind.startswith("tls_alert:"):
        return CLIENT_CERT if any(a.lower() in kind for a in _CLIENT_CERT_ALERTS) else TLS
    if kind.startswith("tls:"):
        return TLS
    simple = {"refused": REFUSED, "timeout": TIMEOUT, "dns": DNS}
    if kind in simple:
        return simple[kind]
    return HANDSHAKE if kind.startswith("handshake:") else OTHER


def explain(failures: Mapping[str, int], urls: Sequence[str]) -> list[dict[str, Any]]:
    """Failure kinds grouped by cause, most frequent first: ``{cause, title, count, kinds, hint}``."""
    groups: dict[Cause, dict[str, int]] = {}
    for kind, n in failures.items():
        if n > 0:
            groups.setdefault(cause_of(kind), {})[kind] = n
    out = []
    for c, kinds in groups.items():
        failed_at = sorted({k.split("@", 1)[1] for k in kinds if "@" in k})
        where = ", ".join(failed_at or urls)
        out.append({"cause": c.name, "title": c.title, "count": sum(kinds.values()),
                    "kinds": dict(sorted(kinds.items())), "hint": c.hint.replace("{urls}", where)})
    return sorted(out, key=lambda g: (-g["count"], g["cause"]))


def summary_lines(causes: Sequence[Mapping[str, Any]]) -> list[str]:
    """The summary's block on failed connections (empty when none failed)."""
    if not causes:
        return []
    lines = ["  why connections failed:"]
    for c in causes:
        lines.append(f"    {c['count']:>8}  {c['title']}: {c['hint']}")
    return lines
