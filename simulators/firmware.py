"""Firmware updates of the virtual charger: download over HTTP(S), verify, install, reboot.

``FirmwareUpdater.request`` serves UpdateFirmware (both versions) and SignedUpdateFirmware
(1.6 security whitepaper). After answering, the charger waits for the retrieve time, downloads
the image (bounded by ``max_bytes``; a ``Content-Length`` that does not match the body fails),
verifies a signed image's signature (RSA PKCS#1 v1.5 or ECDSA, SHA-256 over the image, with the
signing certificate's key), installs, reports every step (``step_s`` apart) and reboots,
booting with the new version.

A simulated image names its version in its first line, ``SIMFW <version>``; an image without
that line installs as version ``sha256:<first 12 hex digits>``.

Faults (``FirmwareFaults``, fleet-wide in ``FirmwareOptions`` or per station in the charger's
spec) make the download or the installation fail, or the request be rejected, optionally only
on the charger's first request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ocppj.framing import ErrorKind
from ocppj.timestamps import parse_datetime
from simulators.link import Refused, Served

if TYPE_CHECKING:
    from simulators.model import ChargerOps

log = structlog.get_logger("simulators")

HEADER = b"SIMFW "


@dataclass(frozen=True, slots=True)
class FirmwareFaults:
    """What goes wrong with this charger's firmware updates."""

    download: bool = False  # DownloadFailed
    install: bool = False  # InstallationFailed
    reject: bool = False  # the request is rejected (1.6 UpdateFirmware: a CALLERROR, it has no status)
    first_attempt_only: bool = False  # only the charger's first request fails

    @property
    def any(self) -> bool:
        return self.download or self.install or self.reject


@dataclass(frozen=True, slots=True)
class FirmwareOptions:
    """How every charger of a fleet updates its firmware (wall-clock seconds)."""

    step_s: float = 1.0  # between two status notifications
    max_bytes: int = 64 << 20  # larger images fail to download
    timeout_s: float = 60.0  # of the whole download
    faults: FirmwareFaults = FirmwareFaults()  # unless the charger's spec has its own


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    """One firmware update as the CSMS asked for it."""

    action: str  # the notification to send: FirmwareStatusNotification | SignedFirmwareStatusNotification
    location: str
    retrieve_at: datetime | None
    request_id: int | None = None  # included in every notification when given
    signature: str | None = None
    signing_certificate: str | None = None

    @classmethod
    def v16(cls, p: dict[str, Any]) -> UpdateRequest:
        return cls("FirmwareStatusNotification", p["location"], _when(p.get("retrieveDate")))

    @classmethod
    def v16_signed(cls, p: dict[str, Any]) -> UpdateRequest:
        fw = p["firmware"]
        return cls("SignedFirmwareStatusNotification", fw["location"], _when(fw.get("retrieveDateTime")),
                   p["requestId"], fw["signature"], fw["signingCertificate"])

    @classmethod
    def v201(cls, p: dict[str, Any]) -> UpdateRequest:
        fw = p["firmware"]
        return cls("FirmwareStatusNotification", fw["location"], _when(fw.get("retrieveDateTime")),
                   p["requestId"], fw.get("signature"), fw.get("signingCertificate"))


class Rejected(Exception):
    """The request is refused; ``status`` is the answer's (Rejected, InvalidCertificate)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def image_version(image: bytes) -> str:
    """The version an image installs (see the module's docstring)."""
    if image.startswith(HEADER):
        line = image[len(HEADER):].split(b"\n", 1)[0].strip()
        with contextlib.suppress(UnicodeDecodeError):
            if line and len(line) <= 50:
                return line.decode("ascii")
    return "sha256:" + hashlib.sha256(image).hexdigest()[:12]


def signature_valid(image: bytes, signature_b64: str, certificate_pem: str) -> bool:
    """The base64 ``signature`` of ``image`` (SHA-256) checks out with the certificate's key."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    key = x509.load_pem_x509_certificate(certificate_pem.encode()).public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, image, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, image, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def certificate_readable(certificate_pem: str) -> bool:
    try:
        x509.load_pem_x509_certificate(certificate_pem.encode())
    except ValueError:
        return False
    return True


class DownloadFailed(Exception):
    pass


async def download(url: str, max_bytes: int, timeout_s: float) -> bytes:
    """The body at ``url`` (DownloadFailed: any HTTP or network error, too large, size mismatch)."""
    try:
        async with (
            httpx.AsyncClient(timeout=timeout_s, follow_redirects=False, trust_env=False) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise DownloadFailed(f"HTTP {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise DownloadFailed(f"{declared} bytes is over the limit of {max_bytes}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise DownloadFailed(f"over the limit of {max_bytes} bytes")
    except httpx.HTTPError as exc:
        raise DownloadFailed(f"{type(exc).__name__}: {exc}") from None
    if declared is not None and declared.isdigit() and int(declared) != len(body):
        raise DownloadFailed(f"got {len(body)} bytes of {declared}")
    return bytes(body)


class FirmwareUpdater:
    """One charger's firmware: at most one update runs; a new request replaces it."""

    def __init__(
        self, charger: ChargerOps, options: FirmwareOptions, faults: FirmwareFaults | None = None
    ) -> None:
        self.charger = charger
        self.options = options
        self.faults = faults or options.faults
        self.requests = 0  # requests received (the faults' first attempt)
        self.installed: list[str] = []  # versions installed, in order
        self._task: asyncio.Task[None] | None = None

    def _fails(self, fault: bool) -> bool:
        return fault and (not self.faults.first_attempt_only or self.requests == 1)

    def request(self, req: UpdateRequest) -> tuple[str, Callable[[], None]]:
        """(the answer's status, what to start once it is sent); raises Rejected."""
        self.requests += 1
        if self._fails(self.faults.reject):
            raise Rejected("Rejected")
        if req.signing_certificate is not None and not certificate_readable(req.signing_certificate):
            raise Rejected("InvalidCertificate")
        status = "Accepted"
        if self._task is not None and not self._task.done():
            self._task.cancel()
            status = "AcceptedCanceled"
        attempt = self.requests

        def start() -> None:
            self._task = asyncio.create_task(self._run(req, attempt),
                                             name=f"{self.charger.spec.station_id}:firmware")
        return status, start

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _report(self, req: UpdateRequest, status: str) -> None:
        payload: dict[str, Any] = {"status": status}
        if req.request_id is not None:
            payload["requestId"] = req.request_id
        self.charger.enqueue(req.action, lambda: payload)

    async def _step(self, req: UpdateRequest, status: str) -> None:
        self._report(req, status)
        await asyncio.sleep(self.options.step_s)

    async def _run(self, req: UpdateRequest, attempt: int) -> None:
        if req.retrieve_at is not None:
            wait = (req.retrieve_at - datetime.now(UTC)).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
        await self._step(req, "Downloading")
        try:
            if self.faults.download and (not self.faults.first_attempt_only or attempt == 1):
                raise DownloadFailed("injected fault")
            image = await download(req.location, self.options.max_bytes, self.options.timeout_s)
        except DownloadFailed as exc:
            log.info("firmware download failed", station_id=self.charger.spec.station_id, reason=str(exc))
            self._report(req, "DownloadFailed")
            return
        await self._step(req, "Downloaded")
        if req.signature is not None and req.signing_certificate is not None:
            if not signature_valid(image, req.signature, req.signing_certificate):
                self._report(req, "InvalidSignature")
                return
            await self._step(req, "SignatureVerified")
        await self._step(req, "Installing")
        if self.faults.install and (not self.faults.first_attempt_only or attempt == 1):
            self._report(req, "InstallationFailed")
            return
        version = image_version(image)
        self._report(req, "Installed")
        self.installed.append(version)
        self.charger.install_firmware(version)


# --- the CSMS's calls, served -----------------------------------------------------------------


def serve_update_v16(c: ChargerOps, p: dict[str, Any]) -> Served:
    """1.6 UpdateFirmware: its answer is empty, so a rejection is a CALLERROR."""
    try:
        _, start = c.firmware.request(UpdateRequest.v16(p))
    except Rejected as exc:
        raise Refused(ErrorKind.INTERNAL, f"firmware update {exc.status.lower()}") from None
    return Served({}, start)


def serve_signed_update_v16(c: ChargerOps, p: dict[str, Any]) -> Served:
    """1.6 SignedUpdateFirmware (security whitepaper)."""
    return _answered(c, UpdateRequest.v16_signed(p))


def serve_update_v201(c: ChargerOps, p: dict[str, Any]) -> Served:
    return _answered(c, UpdateRequest.v201(p))


def _answered(c: ChargerOps, req: UpdateRequest) -> Served:
    try:
        status, start = c.firmware.request(req)
    except Rejected as exc:
        return Served({"status": exc.status})
    return Served({"status": status}, start)
