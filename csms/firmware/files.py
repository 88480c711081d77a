"""Firmware images on disk (content-addressed by SHA-256) and the signed, expiring download tokens.

A token is ``<file_id>.<expiry epoch s>.<HMAC-SHA256>`` (URL-safe base64 signature) under the
``firmware.url_secret`` (random per process when empty: set it alike on every node of a cluster).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

FILE_ID = re.compile(r"^[0-9a-f]{32}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")


class TooLarge(Exception):
    """The upload passed the size limit."""


class EmptyImage(Exception):
    """The upload has no bytes."""


class TokenInvalid(Exception):
    """An unknown, malformed or forged download token."""


class TokenExpired(Exception):
    """A download token past its expiry."""


@dataclass(frozen=True, slots=True)
class Stored:
    file_id: str
    size: int
    sha256: str


def new_file_id() -> str:
    return uuid.uuid4().hex


class FirmwareBlobs:
    """Images under ``root`` named by their SHA-256; uploads go through a temporary file."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path_of(self, sha256: str) -> Path:
        if not _SHA.match(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256

    async def store(self, chunks: AsyncIterator[bytes]) -> Stored:
        """Write ``chunks`` (TooLarge past ``max_bytes``, EmptyImage without any; nothing is left behind)."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".upload-{secrets.token_hex(8)}"
        digest = hashlib.sha256()
        size = 0
        try:
            with tmp.open("wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise TooLarge(f"the image is larger than {self.max_bytes} bytes "
                                       "(firmware.max_file_bytes)")
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise EmptyImage("the image is empty")
            sha = digest.hexdigest()
            os.replace(tmp, self.path_of(sha))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return Stored(new_file_id(), size, sha)

    def remove(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_of(sha256).unlink()


class DownloadTokens:
    """Issues and checks download tokens."""

    def __init__(self, secret: str | None = None) -> None:
        self._key = (secret or secrets.token_urlsafe(32)).encode()

    def _mac(self, body: str) -> str:
        mac = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def issue(self, file_id: str, expires: datetime) -> str:
        body = f"{file_id}.{int(expires.timestamp())}"
        return f"{body}.{self._mac(body)}"

    def check(self, token: str, now: datetime) -> str:
        """The file id ``token`` grants; TokenInvalid or TokenExpired."""
        parts = token.split(".")
        if len(parts) != 3 or not FILE_ID.match(parts[0]) or not parts[1].isdigit() or len(parts[1]) > 12:
            raise TokenInvalid("unknown download")
        body = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._mac(body), parts[2]):
            raise TokenInvalid("unknown download")
        if int(parts[1]) < now.timestamp():
            raise TokenExpired("the download link has expired")
        return parts[0]
