"""Station passwords: salted hashes (stdlib) of the secret's bytes, compared in constant time.

Two stored schemes. ``scrypt$N$r$p$salt$digest`` (``hash_password``) for any password a person
chose. ``sha256$salt$digest`` (``hash_generated_password``: HMAC-SHA256 keyed by a random
16-byte salt) only for passwords the CSMS generated itself with at least 128 random bits: a
slow hash protects low-entropy secrets, and exhausting 2^128 SHA-256 runs is out of reach,
so scrypt would only cost CPU at every check (about 36 ms; a reconnect storm after a restart).
Any other scheme, or a malformed hash, never matches.

The secret is compared as bytes. OCPP 1.6 ``AuthorizationKey`` is 16-20 bytes that travel
hex-encoded (up to 40 hex digits) in ChangeConfiguration; stations then send either the hex
text or the raw bytes as the Basic-auth password. So a password that looks like hex (32-40
hex digits, even length) is stored as the bytes it encodes, and a candidate that looks like
hex is tried both as text and decoded. OCPP 2.0.1 ``BasicAuthPassword`` (16-40 characters)
is stored as its UTF-8 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

AUTHORIZATION_KEY = "AuthorizationKey"
"""The 1.6 configuration key that holds a station's password."""
BASIC_AUTH_PASSWORD = ("SecurityCtrlr", "BasicAuthPassword")
"""The 2.0.1 (component, variable) that holds a station's password."""

_N, _R, _P = 2**14, 8, 1
_SALT_BYTES, _SHA256_BYTES = 16, 32
_HEX = re.compile(rb"(?:[0-9a-fA-F]{2}){16,20}")
MIN_BYTES, MAX_CANDIDATE_BYTES = 16, 256


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def canonical(secret: str | bytes) -> bytes:
    """The bytes a password stands for: hex decoded when it is 32-40 hex digits."""
    raw = _as_bytes(secret)
    return bytes.fromhex(raw.decode()) if _HEX.fullmatch(raw) else raw


def candidates(secret: str | bytes) -> list[bytes]:
    """Forms a presented password may stand for: as sent, then hex-decoded if it looks like hex."""
    raw = _as_bytes(secret)
    forms = [raw]
    if _HEX.fullmatch(raw):
        forms.append(bytes.fromhex(raw.decode()))
    return forms


def plausible(secret: bytes) -> bool:
    """Cheap pre-check before any hashing: no registered password can match outside these bounds."""
    return MIN_BYTES <= len(secret) <= MAX_CANDIDATE_BYTES


def hash_password(password: str | bytes) -> str:
    """A salted scrypt hash of ``canonical(password)``."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(canonical(password), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    salt_b64, digest_b64 = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"scrypt${_N}${_R}${_P}${salt_b64}${digest_b64}"


def hash_generated_password(password: str | bytes) -> str:
    """A salted HMAC-SHA256 of ``canonical(password)``: ONLY for a password the CSMS generated.

    Fast on purpose; safe only because the secret is random (``lifecycle.new_password``: 160+
    bits). Never use it for a password an operator typed: use ``hash_password``.
    """
    salt = os.urandom(_SALT_BYTES)
    digest = hmac.new(salt, canonical(password), hashlib.sha256).digest()
    salt_b64, digest_b64 = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"sha256${salt_b64}${digest_b64}"


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def verify_exact(secret: bytes, stored: str) -> bool:
    """True when ``secret`` (bytes, no re-interpretation) hashes to ``stored``; any scheme
    other than ``scrypt`` and ``sha256``, or a malformed hash, is False."""
    try:
        scheme, *fields = stored.split("$")
        if scheme == "scrypt" and len(fields) == 5:
            n, r, p, salt_b64, digest_b64 = fields
            salt, digest = _b64(salt_b64), _b64(digest_b64)
            candidate = hashlib.scrypt(
                secret, salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(digest)
            )
        elif scheme == "sha256" and len(fields) == 2:
            salt, digest = _b64(fields[0]), _b64(fields[1])
            if len(salt) < _SALT_BYTES or len(digest) != _SHA256_BYTES:
                return False
            candidate = hmac.new(salt, secret, hashlib.sha256).digest()
        else:
            return False
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(candidate, digest)


def verify(password: str | bytes, stored: str) -> bool:
    """True when any form of ``password`` (see ``candidates``) matches ``stored``."""
    return any(verify_exact(form, stored) for form in candidates(password))
