"""Live sessions by station id. The newest authenticated connection wins; a close removes
only its own generation, so an old socket dying late never unregisters its successor."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

from csms.ocpp.session import StationSession
from ocppj.versions import OcppVersion

FrameTap = Callable[[str, str, str, str, str, bytes | str], object]
"""Sees every OCPP frame: (station id, "in"/"out", action, message type, message id, frame text).

Taps run on the hot path of every message: they must be cheap and must not raise.
"""


class SessionRegistry:
    def __init__(self) -> None:
        self._sessions: dict[str, StationSession] = {}
        self._generations = itertools.count(1)
        self.taps: list[FrameTap] = []  # e.g. the console's message log

    def next_generation(self) -> int:
        return next(self._generations)

    def register(self, session: StationSession) -> StationSession | None:
        """Make ``session`` current; returns the session it replaces, if any."""
        old = self._sessions.get(session.station_id)
        self._sessions[session.station_id] = session
        return old

    def unregister(self, session: StationSession) -> bool:
        """Remove ``session`` if it is still the current one for its station."""
        current = self._sessions.get(session.station_id)
        if current is session:
            del self._sessions[session.station_id]
            return True
        return False

    def get(self, station_id: str) -> StationSession | None:
        return self._sessions.get(station_id)

    def __iter__(self) -> Iterator[StationSession]:
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)

    def count(self, version: OcppVersion) -> int:
        return sum(1 for s in self._sessions.values() if s.version is version)
