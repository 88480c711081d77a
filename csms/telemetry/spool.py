"""A bounded on-disk FIFO of text lines in append-only segment files.

Used by the InfluxDB writer while InfluxDB is unreachable (and while it catches up).
Layout: ``DIR/000000000001.seg`` ... plus ``DIR/.lock`` (an exclusive ``flock`` so two
processes never share a buffer). Records are newline-terminated lines; a torn last
line (crash mid-write) is ignored on read. Segments left by a previous run are
replayed. Methods are blocking and thread-safe: call them via ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from csms.errors import ConfigError

SUFFIX = ".seg"


@dataclass(slots=True)
class Segment:
    """One segment file and what it holds."""

    seq: int
    path: Path
    size: int = 0
    lines: int = 0


class Spool:
    """Append lines at the tail, read and remove whole segments at the head."""

    def __init__(self, directory: Path, *, max_bytes: int, segment_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_file = _acquire(directory / ".lock")
        self._segments: list[Segment] = [_scan(p) for p in sorted(directory.glob(f"*{SUFFIX}"))]
        self._segments = [s for s in self._segments if _keep(s)]
        self._tail: IO[bytes] | None = None  # open handle of the last segment, if we write to it

    # --- state ----------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Bytes on disk."""
        with self._lock:
            return sum(s.size for s in self._segments)

    @property
    def lines(self) -> int:
        """Lines (points) on disk."""
        with self._lock:
            return sum(s.lines for s in self._segments)

    def empty(self) -> bool:
        with self._lock:
            return not any(s.lines for s in self._segments)

    # --- writing --------------------------------------------------------------------------
    def append(self, lines: list[str]) -> bool:
        """Append ``lines``; False (nothing written) when that would exceed ``max_bytes``."""
        data = ("\n".join(lines) + "\n").encode()
        with self._lock:
            if sum(s.size for s in self._segments) + len(data) > self.max_bytes:
                return False
            tail = self._writable_tail()
            assert self._tail is not None
            self._tail.write(data)
            self._tail.flush()
            tail.size += len(data)
            tail.lines += len(lines)
            return True

    def _writable_tail(self) -> Segment:
        if self._tail is not None and self._segments and self._segments[-1].size < self.segment_bytes:
            return self._segments[-1]
        self._close_tail()
        seq = self._segments[-1].seq + 1 if self._segments else 1
        seg = Segment(seq, self.directory / f"{seq:012d}{SUFFIX}")
        self._tail = seg.path.open("ab")
        self._segments.append(seg)
        return seg

    def _close_tail(self) -> None:
        if self._tail is not None:
            self._tail.close()
            self._tail = None

    # --- reading --------------------------------------------------------------------------
    def head(self) -> Segment | None:
        """The oldest segment with data, closed for writing (the tail is sealed if need be)."""
        with self._lock:
            for seg in self._segments:
                if seg.lines:
                    if seg is self._segments[-1] and self._tail is not None:
                        self._close_tail()
                    return seg
            return None

    def read(self, seg: Segment) -> list[str]:
        """The complete lines of a (sealed) segment."""
        try:
            data = seg.path.read_bytes()
        except FileNotFoundError:
            return []
        text = data.decode("utf-8", errors="replace")
        complete, _, _torn = text.rpartition("\n")
        return [line for line in complete.split("\n") if line]

    def remove(self, seg: Segment) -> None:
        """Forget a segment once its lines are safely elsewhere."""
        with self._lock:
            if seg in self._segments:
                self._segments.remove(seg)
                if self._tail is not None and not self._segments:
                    self._close_tail()
        with contextlib.suppress(FileNotFoundError):
            seg.path.unlink()

    def close(self) -> None:
        with self._lock:
            self._close_tail()
        self._lock_file.close()


def _acquire(path: Path) -> IO[bytes]:
    handle = path.open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(
            f"telemetry buffer {path.parent} is used by another process; set influx.buffer_dir"
        ) from None
    return handle


def _scan(path: Path) -> Segment:
    data = path.read_bytes()
    return Segment(int(path.stem), path, len(data), data.count(b"\n"))


def _keep(seg: Segment) -> bool:
    if seg.lines == 0:
        with contextlib.suppress(OSError):
            os.unlink(seg.path)
        return False
    return True
