"""Energy register readings of transactions, handed to one reader in batches.

Every meter sample passes through the core; a part that needs each transaction's register
readings (pricing) attaches a ``RegisterFeed`` to the service instead of subscribing to
``MeterSampled``, so that no event is built and dispatched per sample. A reading is queued as
one ``(key, time, Wh)`` tuple and reaches the reader in arrival order, in batches: when
``batch`` readings are queued (memory stays bounded however long the reader waits), and
whenever the reader calls ``flush()`` before it reads its own state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

log = logging.getLogger(__name__)

TxKey = tuple[str, str]
"""(station id, transaction id)."""
Reading = tuple[TxKey, datetime, float]
"""A transaction's energy import register: (key, the sample's time, Wh)."""


class RegisterFeed:
    """Queues readings for ``sink``; ``sink`` gets every reading once, in order, in batches."""

    __slots__ = ("_queued", "batch", "sink")

    def __init__(self, sink: Callable[[list[Reading]], None], *, batch: int = 1024) -> None:
        self.sink = sink
        self.batch = batch
        self._queued: list[Reading] = []

    @property
    def queued(self) -> int:
        return len(self._queued)

    def add(self, key: TxKey, at: datetime, wh: float) -> None:
        """One reading (on the hot path: a tuple and an append)."""
        queued = self._queued
        queued.append((key, at, wh))
        if len(queued) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Hand what is queued to the sink. A failing sink is logged: it never fails the caller
        (a station's message)."""
        if not self._queued:
            return
        readings, self._queued = self._queued, []
        try:
            self.sink(readings)
        except Exception:
            log.exception("register reader failed on %d readings", len(readings))
