"""Who may become a station: the per-station decision on the WebSocket upgrade.

``transport_refusal`` enforces the station's security profile on the connection itself (no
downgrade): profiles 2 and 3 need TLS, profile 3 a client certificate naming the station.
``needs_password`` says whether HTTP Basic auth is required (profiles 1 and 2, and any
station that has a password). ``PasswordChecker`` verifies passwords off the event loop,
bounded, with an in-memory cache of recent successes so reconnect storms cost a keyed HMAC
per station instead of a scrypt run.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from csms.security import passwords
from csms.security.records import StationCredentials
from csms.security.tls import PeerCertificate, identity_problem


class Overloaded(Exception):
    """Too many password checks are queued; the handshake should get HTTP 503."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """An HTTP refusal of the upgrade: status, metric reason and a body that reveals no secret."""

    status: int
    reason: str
    text: str


def basic_credentials(header: str | None) -> tuple[bytes, bytes] | None:
    """(username, password) as bytes from ``Authorization: Basic``; None if absent or malformed.

    Bytes, not text: a 1.6 AuthorizationKey may be sent raw and need not be UTF-8.
    """
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


def expected_identity(creds: StationCredentials, mode: str) -> str | None:
    """What a profile-3 certificate's CN must equal: the station id, or its known serial number."""
    return creds.station_id if mode == "station_id" else creds.serial_number


def transport_refusal(
    creds: StationCredentials, *, tls: bool, peer: PeerCertificate | None,
    identity_mode: str = "station_id", organization: str = "",
) -> Refusal | None:
    """Why this connection is too weak for the station's profile, or None when it is enough."""
    profile = creds.security_profile
    if profile >= 2 and not tls:
        return Refusal(403, "tls_required", f"Security profile {profile} requires wss://\n")
    if profile == 3:
        if peer is None:
            return Refusal(403, "client_cert_required", "Security profile 3 requires a client certificate\n")
        if identity_problem(peer, expected_identity(creds, identity_mode), organization) is not None:
            return Refusal(403, "client_cert_mismatch", "Client certificate does not identify this station\n")
    return None


def needs_password(creds: StationCredentials) -> bool:
    """Profiles 1 and 2 always; profile 0 when a password is set; profile 3 authenticates by certificate."""
    if creds.security_profile == 3:
        return False
    return creds.security_profile >= 1 or creds.password_hash is not None


def _verify_any(forms: Sequence[bytes], hashes: Sequence[str]) -> tuple[int, int] | None:
    for hi, stored in enumerate(hashes):
        for fi, form in enumerate(forms):
            if passwords.verify_exact(form, stored):
                return hi, fi
    return None


class PasswordChecker:
    """Checks station passwords on a small thread pool; at most ``max_pending`` at a time.

    A check, once started, runs to the end and its success is cached even when the handshake
    that asked for it gave up meanwhile (open timeout), and identical checks in flight are
    shared: in a reconnect storm a station's retries never pay for its password twice. Without
    this, retries of stations whose check waited longer than their handshake timeout each
    queued another scrypt run, and a storm of scrypt-password stations never got in.
    """

    def __init__(self, *, workers: int = 2, max_pending: int = 256, cache_size: int = 100_000) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="csms-password")
        self._max_pending = max_pending
        self._pending = 0
        self._key = os.urandom(32)
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._cache_size = cache_size
        self._inflight: dict[tuple[str, tuple[str, ...], bytes], asyncio.Future[tuple[int, int] | None]] = {}
        self.hashes_computed = 0

    def _mac(self, secret: bytes) -> bytes:
        return hmac.new(self._key, secret, hashlib.sha256).digest()

    async def matching_hash(self, station_id: str, password: bytes, hashes: Sequence[str]) -> str | None:
        """The stored hash ``password`` matches (current or pending), else None. Raises Overloaded."""
        if not hashes or not passwords.plausible(password):
            return None
        forms = passwords.candidates(password)
        macs = [self._mac(f) for f in forms]
        for stored in hashes:
            cached = self._cache.get((station_id, stored))
            if cached is not None and any(hmac.compare_digest(cached, m) for m in macs):
                self._cache.move_to_end((station_id, stored))
                return stored
        key = (station_id, tuple(hashes), macs[0])
        check = self._inflight.get(key)
        if check is None:
            if self._pending >= self._max_pending:
                raise Overloaded
            check = self._start(key, forms, macs)
        found = await asyncio.shield(check)  # a cancelled waiter leaves the check running
        return None if found is None else hashes[found[0]]

    def _start(
        self, key: tuple[str, tuple[str, ...], bytes], forms: list[bytes], macs: list[bytes]
    ) -> asyncio.Future[tuple[int, int] | None]:
        station_id, hashes, _ = key
        self._pending += 1
        check = asyncio.get_running_loop().run_in_executor(self._pool, _verify_any, forms, list(hashes))
        self._inflight[key] = check

        def done(f: asyncio.Future[tuple[int, int] | None]) -> None:
            self._pending -= 1
            self._inflight.pop(key, None)
            if f.cancelled() or f.exception() is not None:
                return
            self.hashes_computed += 1
            found = f.result()
            if found is not None:
                self._cache[(station_id, hashes[found[0]])] = macs[found[1]]
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)

        check.add_done_callback(done)
        return check

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
