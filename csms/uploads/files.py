"""Uploaded files on disk: streamed in under a size bound, digested on the way, deleted when old."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


class TooLarge(Exception):
    """The upload went over the size bound; nothing was kept."""


@dataclass(frozen=True, slots=True)
class Written:
    size_bytes: int
    sha256: str


class FileStore:
    """One file per upload, ``<dir>/<id>.log``; a file is written as ``.part`` and renamed when whole."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    def path(self, upload_id: int) -> Path:
        return self.directory / f"{upload_id}.log"

    async def write(self, upload_id: int, chunks: AsyncIterator[bytes]) -> Written:
        """Stream ``chunks`` to the upload's file; on any error (``TooLarge``, a broken stream) the
        partial file is removed and the error raised."""
        part = self.directory / f"{upload_id}.part"
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        out: BinaryIO = await asyncio.to_thread(part.open, "wb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise TooLarge(f"the upload is over {self.max_bytes} bytes")
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
            await asyncio.to_thread(out.close)
            await asyncio.to_thread(part.replace, self.path(upload_id))
        except BaseException:
            out.close()
            with contextlib.suppress(OSError):
                part.unlink()
            raise
        return Written(size, digest.hexdigest())

    async def ids(self) -> list[int]:
        """The uploads that have a whole file here."""
        def scan() -> list[int]:
            if not self.directory.is_dir():
                return []
            return [int(p.stem) for p in self.directory.glob("*.log") if p.stem.isdigit()]

        return await asyncio.to_thread(scan)

    async def delete(self, upload_id: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.path(upload_id).unlink)
