"""SignCertificate (1.6 security extension and 2.0.1) and the CertificateSigned that follows.

OCPP handlers over the security package's CA and store (``csms.security``).

The handler answers at once (Accepted only for a CSR the CA may sign: valid signature,
strong key, subject naming this very station); then, after the answer is on the wire, a
background task signs it and sends CertificateSigned. Every issued certificate is stored
with the station's verdict (Sent, Accepted, Rejected, Failed). One signing per station at
a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from csms.errors import ConfigError, ControlError
from csms.ocpp.session import Handler, StationSession
from csms.security.ca import CaProvider, CsrRejected
from csms.security.records import IssuedCertificate, SecurityStore, StationCredentials
from csms.security.station_auth import expected_identity
from ocppj.versions import OcppVersion

log = structlog.get_logger("csms.security")

Spawn = Callable[[Coroutine[Any, Any, None]], None]
STATION_CERT_201 = "ChargingStationCertificate"


class CertificateService:
    """Owns the CA use of the OCPP endpoint: SignCertificate handlers and delivery."""

    def __init__(
        self, ca: CaProvider, store: SecurityStore, spawn: Spawn, *, valid_days: int = 365,
        identity_mode: str = "station_id", organization: str = "",
    ) -> None:
        self.ca = ca
        self.store = store
        self.spawn = spawn
        self.valid_days = valid_days
        self.identity_mode = identity_mode
        self.organization = organization
        self._busy: set[str] = set()

    def handlers(self, version: OcppVersion) -> dict[str, Handler]:
        async def sign_certificate(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
            return await self._on_sign(s, p)

        return {"SignCertificate": sign_certificate}

    def _rejected(self, version: OcppVersion, reason: str) -> dict[str, Any]:
        if version is OcppVersion.V16:
            return {"status": "Rejected"}
        info = {"reasonCode": "InvalidCSR", "additionalInfo": reason[:512]}
        return {"status": "Rejected", "statusInfo": info}

    async def _on_sign(self, s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
        kind = p.get("certificateType", STATION_CERT_201)
        if s.version is OcppVersion.V201 and kind != STATION_CERT_201:
            return self._rejected(s.version, "V2G certificates are not signed by this CSMS")
        if s.station_id in self._busy:
            return self._rejected(s.version, "a certificate for this station is being signed")
        creds = await self.store.get_credentials(s.station_id)
        expected = expected_identity(
            creds or StationCredentials(s.station_id, 0), self.identity_mode
        )
        try:
            csr = self.ca.get().check_csr(p["csr"], expected, self.organization)
        except CsrRejected as exc:
            s.log.warning("certificate signing request rejected", reason=str(exc))
            return self._rejected(s.version, str(exc))
        except ConfigError as exc:
            s.log.error("CA unavailable", error=str(exc))
            return self._rejected(s.version, "CA unavailable")
        self._busy.add(s.station_id)
        self.spawn(self._deliver(s, csr))
        return {"status": "Accepted"}

    async def _deliver(self, s: StationSession, csr: x509.CertificateSigningRequest) -> None:
        try:
            await asyncio.sleep(0)  # the SignCertificate answer goes out first
            signed = self.ca.get().sign(csr, valid_days=self.valid_days)
            cert = signed.certificate
            cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
            cn = cn.decode() if isinstance(cn, bytes) else cn
            await self.store.save_certificate(IssuedCertificate(
                s.station_id, signed.serial_hex, f"CN={cn}", cert.not_valid_before_utc,
                cert.not_valid_after_utc, cert.public_bytes(serialization.Encoding.PEM).decode(), "Sent",
            ))
            payload: dict[str, Any] = {"certificateChain": signed.chain_pem}
            if s.version is OcppVersion.V201:
                payload["certificateType"] = STATION_CERT_201
            try:
                answer = await s.call("CertificateSigned", payload)
                status = str(answer.get("status", "?"))
            except ControlError as exc:
                s.log.warning("CertificateSigned not delivered", error=str(exc))
                status = "Failed"
            await self.store.set_certificate_status(signed.serial_hex, status)
            s.log.info("station certificate issued", serial=signed.serial_hex, status=status)
        except Exception:
            log.exception("certificate delivery failed", station_id=s.station_id)
        finally:
            self._busy.discard(s.station_id)
