"""Garbage-collector policy of a long-running server process: freeze survivors, thaw rarely.

CPython's cyclic collector re-examines every container it tracks until the object reaches
the oldest generation, and a full collection walks all of them. A node with tens of
thousands of sessions holds millions of such objects (coroutine frames, tasks, futures,
dicts), so default collections stop the event loop for hundreds of milliseconds and more
(measured in docs/performance.md). The policy:

* every ``freeze_interval_s``: collect the young generation, then ``gc.freeze()`` what
  survived (everything made since the previous freeze that is still alive). Frozen
  objects are never scanned again, so pauses stay proportional to recent allocations, not
  to the number of connected stations;
* every ``thaw_interval_s``, or sooner once ``thaw_after_churn`` connections ended
  (``note_churn``; refused handshakes and closed sockets can leave reference cycles):
  ``gc.unfreeze()``, one full collection, freeze again.
  Cycles that became garbage after being frozen are freed here, never earlier; this pause
  is the one that grows with the node, so it is rare, logged and measured;
* every collection is timed (``gc.callbacks``); pauses over ``slow_pause_ms`` are logged
  as warnings, and ``stats`` feeds the ``csms_gc_*`` metrics.

``gc.freeze()`` and ``gc.unfreeze()`` are O(1) (list splices), but ``gc.get_freeze_count()``
walks the whole frozen list (~10-150 ms at a million objects), so nothing here calls it.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

log = structlog.get_logger("csms.gc")

PAUSE_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class GcSettings:
    freeze_interval_s: float = 1.0  # 0: freeze once at start-up only
    thaw_interval_s: float = 3600.0  # 0: never (frozen cyclic garbage is then kept forever)
    thresholds: tuple[int, int, int] = (5000, 10, 1000)
    slow_pause_ms: float = 100.0
    # thaw early once this many connections ended since the last thaw (0: only on the interval);
    # at most every ``min_thaw_gap_s``
    thaw_after_churn: int = 50_000
    min_thaw_gap_s: float = 300.0


_churn = 0


def note_churn(connections: int = 1) -> None:
    """Connections ended (closed, refused, dropped): each may leave frozen reference cycles.

    Process-wide, like the collector itself; the policy thaws early when they add up."""
    global _churn
    _churn += connections


@dataclass
class GcStats:
    """Collections by generation: count, pause histogram (cumulative per bucket), sum, max."""

    collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    collected: list[int] = field(default_factory=lambda: [0, 0, 0])
    pause_sum_s: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    pause_max_s: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    buckets: list[list[int]] = field(
        default_factory=lambda: [[0] * (len(PAUSE_BUCKETS_S) + 1) for _ in range(3)]
    )
    freezes: int = 0
    thaws: int = 0
    last_thaw_s: float = 0.0
    last_thaw_collected: int = 0

    def observe(self, generation: int, seconds: float, collected: int) -> None:
        self.collections[generation] += 1
        self.collected[generation] += collected
        self.pause_sum_s[generation] += seconds
        if seconds > self.pause_max_s[generation]:
            self.pause_max_s[generation] = seconds
        self.buckets[generation][bisect.bisect_left(PAUSE_BUCKETS_S, seconds)] += 1


class GcPolicy:
    """Installs the policy in this process; ``run()`` is its periodic task."""

    def __init__(
        self, settings: GcSettings = GcSettings(), *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.stats = GcStats()
        self._clock = clock
        self._started: float | None = None
        self._started_cpu = 0.0
        self._installed = False
        self._saved_thresholds = gc.get_threshold()
        self._last_thaw = clock()
        self._thawing = False

    def install(self) -> None:
        """Collect what start-up left behind, freeze the rest, set thresholds, time collections."""
        if self._installed:
            return
        gc.collect()
        gc.freeze()
        self.stats.freezes += 1
        gc.set_threshold(*self.settings.thresholds)
        gc.callbacks.append(self._on_gc)
        self._installed = True
        self._last_thaw = self._clock()

    def uninstall(self) -> None:
        """Undo ``install`` (tests; a process that keeps running without the policy)."""
        if not self._installed:
            return
        gc.callbacks.remove(self._on_gc)
        gc.set_threshold(*self._saved_thresholds)
        gc.unfreeze()
        self._installed = False

    def freeze_survivors(self) -> None:
        """The young generation collected, then everything that survived frozen.

        The middle generation is not collected first: that would scan everything made since
        the previous freeze (tens of milliseconds while thousands of stations connect).
        Garbage cycles in it are frozen with the rest and freed at the next thaw."""
        gc.collect(0)
        gc.freeze()
        self.stats.freezes += 1

    def thaw(self) -> int:
        """Unfreeze, collect everything, freeze again; returns the objects collected."""
        started = time.perf_counter()
        self._thawing = True
        try:
            gc.unfreeze()
            collected = gc.collect()
            gc.freeze()
        finally:
            self._thawing = False
        seconds = time.perf_counter() - started
        self.stats.thaws += 1
        self.stats.last_thaw_s = seconds
        self.stats.last_thaw_collected = collected
        self._last_thaw = self._clock()
        global _churn
        churn, _churn = _churn, 0
        emit = log.warning if seconds * 1000 >= self.settings.slow_pause_ms else log.info
        emit("gc thaw", pause_ms=round(seconds * 1000, 1), collected=collected, connections_ended=churn)
        return collected

    def thaw_due(self) -> bool:
        """The interval has passed, or enough connections ended since the last thaw."""
        s = self.settings
        since = self._clock() - self._last_thaw
        if s.thaw_interval_s > 0 and since >= s.thaw_interval_s:
            return True
        return 0 < s.thaw_after_churn <= _churn and since >= s.min_thaw_gap_s

    def tick(self) -> None:
        """One period: thaw when due, else freeze the survivors."""
        s = self.settings
        if self.thaw_due():
            self.thaw()
        elif s.freeze_interval_s > 0:
            self.freeze_survivors()

    async def run(self) -> None:
        """Tick every ``freeze_interval_s`` (or at the thaw interval when freezing is off)."""
        s = self.settings
        period = s.freeze_interval_s or s.thaw_interval_s
        if period <= 0:
            return
        while True:
            await asyncio.sleep(period)
            self.tick()

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            self._started_cpu = time.thread_time()
            return
        if self._started is None:
            return
        seconds = time.perf_counter() - self._started
        self._started = None
        generation = int(info.get("generation", 2))
        collected = int(info.get("collected", 0))
        self.stats.observe(generation, seconds, collected)
        if seconds * 1000 >= self.settings.slow_pause_ms and not self._thawing:
            # cpu_ms well under pause_ms: the process was preempted (an overloaded machine)
            cpu_ms = (time.thread_time() - self._started_cpu) * 1000
            log.warning("gc pause", generation=generation, pause_ms=round(seconds * 1000, 1),
                        cpu_ms=round(cpu_ms, 1), collected=collected)
