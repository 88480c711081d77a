"""Station passwords: salted scrypt hashes (stdlib) of the secret's bytes, compared in constant time.

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

_N, _R, _P = 2**14, 8, 1
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


def verify_exact(secret: bytes, stored: str) -> bool:
    """True when ``secret`` (bytes, no re-interpretation) hashes to ``stored``."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        candidate = hashlib.scrypt(
            secret, salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(digest)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(candidate, digest)


def verify(password: str | bytes, stored: str) -> bool:
    """True when any form of ``password`` (see ``candidates``) matches ``stored``."""
    return any(verify_exact(form, stored) for form in candidates(password))
