"""Firmware images on disk (content-addressed by SHA-256) and the signed, expiring download tokens.

A token is ``<file_id>.<expiry epoch s>.<HMAC-SHA256>`` (URL-safe base64 signature) under the
``firmware.url_secret``; when that is empty, a random key made once and kept in a file (mode 0600)
under the files directory, so links outlive restarts (nodes sharing the directory share the key).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

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
        """Write ``chunks`` (TooLarge past ``max_bytes``, EmptyImage without any; nothing is left behind).

        The file work runs in threads: an image may be hundreds of megabytes.
        """
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        tmp = self.root / f".upload-{secrets.token_hex(8)}"
        digest = hashlib.sha256()
        size = 0
        out: BinaryIO = await asyncio.to_thread(tmp.open, "wb")
        try:
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise TooLarge(f"the image is larger than {self.max_bytes} bytes "
                                       "(firmware.max_file_bytes)")
                    digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
            finally:
                await asyncio.to_thread(out.close)
            if size == 0:
                raise EmptyImage("the image is empty")
            sha = digest.hexdigest()
            await asyncio.to_thread(os.replace, tmp, self.path_of(sha))
        finally:
            await asyncio.to_thread(_unlink, tmp)
        return Stored(new_file_id(), size, sha)

    async def remove(self, sha256: str) -> None:
        await asyncio.to_thread(_unlink, self.path_of(sha256))


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def kept_secret(path: Path) -> str:
    """The key kept in ``path``, made (random, mode 0600) by the first caller; blocking file work."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another node may have created it and not written it yet
            key = path.read_text().strip()
            if key:
                return key
            time.sleep(0.02)
        raise ValueError(f"the firmware URL key file {path} is empty") from None
    key = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key


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
