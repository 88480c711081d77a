"""Station credentials from memory, so a reconnect storm does not query the database per handshake.

A snapshot of every station is loaded in one query when first needed and again once it is
older than ``ttl_s`` (changes made by another process, e.g. ``csms stations`` against the
same database, show within that time). Writes through the owning store call ``forget`` (or
``patch``) after they commit, so they show at once. A station missing from the snapshot is
read alone and never cached as absent. A read or load that overlapped a write never stores
what it read for that station.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from csms.security.records import StationCredentials

# Every station's credentials; gets the current entries, to return those that did not change.
LoadAll = Callable[[Mapping[str, StationCredentials]], Awaitable[dict[str, StationCredentials]]]
LoadOne = Callable[[str], Awaitable[StationCredentials | None]]


class CredentialsCache:
    """``station_id -> StationCredentials`` kept current by the store's writers."""

    def __init__(
        self, load_all: LoadAll, load_one: LoadOne, *, ttl_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load_all = load_all
        self._load_one = load_one
        self._ttl = ttl_s
        self._clock = clock
        self._entries: dict[str, StationCredentials] = {}
        self._loaded_at: float | None = None
        self._loading: asyncio.Future[None] | None = None
        self._dirty: set[str] | None = None  # stations written while a snapshot loads
        self._generation = 0  # bumped by every write

    async def get(self, station_id: str) -> StationCredentials | None:
        if self._loaded_at is None or self._clock() - self._loaded_at > self._ttl:
            await self._reload()
        hit = self._entries.get(station_id)
        if hit is not None:
            return hit
        generation = self._generation
        creds = await self._load_one(station_id)
        if creds is not None and generation == self._generation:
            self._entries[station_id] = creds
        return creds

    def forget(self, station_id: str) -> None:
        """After a committed write that may change this station's credentials."""
        self._entries.pop(station_id, None)
        self._touched(station_id)

    def patch(self, station_id: str, **changes: Any) -> None:
        """After a committed write whose effect on the credentials is known (e.g. a new serial)."""
        hit = self._entries.get(station_id)
        if hit is not None:
            self._entries[station_id] = replace(hit, **changes)
        self._touched(station_id)

    def _touched(self, station_id: str) -> None:
        self._generation += 1
        if self._dirty is not None:
            self._dirty.add(station_id)

    async def _reload(self) -> None:
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._load())
        await asyncio.shield(self._loading)

    async def _load(self) -> None:
        started, self._dirty = self._clock(), set()
        try:
            fresh = await self._load_all(self._entries)
            for station_id in self._dirty:
                fresh.pop(station_id, None)
            self._entries = fresh
            self._loaded_at = started
        finally:
            self._dirty, self._loading = None, None
