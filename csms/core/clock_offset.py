"""Per-station clock offsets: how far a station's clock is from the CSMS's. Pure, no I/O.

A sample is one message's own timestamp minus the CSMS's receive time (positive: the station's
clock runs ahead). A station's offset is the median of its last ``window`` samples, so a
message queued while offline or a meter value sampled a while before sending does not move it.
Callers leave out what they know is old (2.0.1 messages flagged ``offline``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class _Track:
    samples: deque[float]
    offset_s: float = 0.0
    reported_s: float | None = None  # the offset last published


@dataclass(slots=True)
class ClockOffsets:
    """The offset of every station that sent a timestamp, with change detection.

    ``add`` returns the new offset when it should be published: once ``min_samples`` samples
    came, then whenever it moved more than ``report_change_s`` from the last published value.
    """

    window: int = 9
    min_samples: int = 3
    report_change_s: float = 5.0
    _tracks: dict[str, _Track] = field(default_factory=dict)

    def add(self, station_id: str, station_time: datetime, received: datetime) -> float | None:
        """Record one sample; the offset to publish, or None when nothing changed noticeably."""
        if station_time.tzinfo is None or received.tzinfo is None:
            return None  # a naive time has no defined offset
        track = self._tracks.get(station_id)
        if track is None:
            track = self._tracks[station_id] = _Track(deque(maxlen=self.window))
        track.samples.append((station_time - received).total_seconds())
        track.offset_s = median(track.samples)
        if len(track.samples) < self.min_samples:
            return None
        if track.reported_s is not None and abs(track.offset_s - track.reported_s) <= self.report_change_s:
            return None
        track.reported_s = track.offset_s
        return track.offset_s

    def offset_s(self, station_id: str) -> float | None:
        """The station's current offset in seconds (None before its first sample)."""
        track = self._tracks.get(station_id)
        return None if track is None else track.offset_s

    def forget(self, station_id: str) -> None:
        self._tracks.pop(station_id, None)

    def offsets(self) -> Iterator[float]:
        """Every measured station's offset (for fleet-wide metrics)."""
        return (t.offset_s for t in self._tracks.values())

    def __len__(self) -> int:
        return len(self._tracks)


def median(values: deque[float] | list[float]) -> float:
    """The median (mean of the middle two for an even count); values must not be empty."""
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
