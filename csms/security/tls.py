"""TLS for the OCPP endpoint: the server context, and who the client certificate names.

Profiles 2 and 3 share one ``wss://`` listener. The server asks every client for a
certificate (``CERT_OPTIONAL``): one that is presented must chain to a trusted client CA and
be within its validity, or the TLS handshake fails; whether one is *required*, and whose
it must be, is decided per station after the HTTP request names the station.

TLS 1.2 suites are the four the OCPP 1.6 security whitepaper and 2.0.1 Part 2 require, plus
their ECDHE-RSA forms; TLS 1.3 suites are OpenSSL's (all AEAD). Compression and
renegotiation are off.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from csms.config import TlsConfig
from csms.errors import ConfigError

OCPP_TLS12_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "AES128-GCM-SHA256",  # TLS_RSA_WITH_AES_128_GCM_SHA256 (required by OCPP)
    "AES256-GCM-SHA384",  # TLS_RSA_WITH_AES_256_GCM_SHA384 (required by OCPP)
])


def server_context(cfg: TlsConfig, extra_client_ca_pems: Sequence[str] = ()) -> ssl.SSLContext:
    """The SSLContext of the ``wss://`` listener; raises ConfigError naming the bad file."""
    if not cfg.cert or not cfg.key:
        raise ConfigError("tls.cert and tls.key must both be set to serve wss://")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if cfg.min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    try:
        ctx.set_ciphers(cfg.ciphers or OCPP_TLS12_CIPHERS)
    except ssl.SSLError:
        raise ConfigError(f"tls.ciphers {cfg.ciphers!r} selects no cipher suite") from None
    try:
        ctx.load_cert_chain(cfg.cert, cfg.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load tls.cert {cfg.cert!r} / tls.key {cfg.key!r}: {exc}") from None
    trusted = False
    if cfg.client_ca:
        try:
            ctx.load_verify_locations(cafile=cfg.client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load tls.client_ca {cfg.client_ca!r}: {exc}") from None
        trusted = True
    for pem in extra_client_ca_pems:
        ctx.load_verify_locations(cadata=pem)
        trusted = True
    ctx.verify_mode = ssl.CERT_OPTIONAL if trusted else ssl.CERT_NONE
    return ctx


def shrink_read_buffer(kib: int) -> None:
    """Make asyncio's TLS transports preallocate ``kib`` KiB instead of 256 KiB (0 = leave it).

    ``asyncio.sslproto.SSLProtocol.max_size`` sizes the read buffer every TLS transport of
    the default event loop allocates; it is a class attribute, so this is process-wide
    (uvloop has its own, lazily filled buffer and is not affected).
    """
    if kib > 0:
        asyncio.sslproto.SSLProtocol.max_size = kib * 1024


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """The parts of a verified client certificate that identify a station."""

    common_names: tuple[str, ...]
    organizations: tuple[str, ...]
    serial: int


def _names(name: x509.Name, oid: x509.ObjectIdentifier) -> tuple[str, ...]:
    return tuple(str(a.value) for a in name.get_attributes_for_oid(oid))


def peer_certificate(transport: Any) -> PeerCertificate | None:
    """The client certificate of a TLS transport (already chain-verified), None if none was sent."""
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    cert = x509.load_der_x509_certificate(der)
    return PeerCertificate(
        _names(cert.subject, NameOID.COMMON_NAME), _names(cert.subject, NameOID.ORGANIZATION_NAME),
        cert.serial_number,
    )


def uses_tls(transport: Any) -> bool:
    return transport is not None and transport.get_extra_info("ssl_object") is not None


def identity_problem(
    peer: PeerCertificate, expected: str | None, organization: str = ""
) -> str | None:
    """Why ``peer`` is not the expected station (None when it is): exactly one CN, equal to
    ``expected``; and, when configured, the organization."""
    if expected is None:
        return "no identity known to match the certificate against"
    if len(peer.common_names) != 1:
        return f"certificate has {len(peer.common_names)} common names"
    if peer.common_names[0] != expected:
        return "certificate common name does not match the station"
    if organization and organization not in peer.organizations:
        return "certificate organization does not match"
    return None
