"""Simulated time and an interruptible sleep.

The fleet has two time scales. Network behaviour (heartbeats, meter-value intervals,
faults, back-off) runs in wall-clock seconds: that is the load the CSMS sees. The EV
world (arrivals, parking time, battery physics) runs on :class:`SimClock`, ``rate`` times
faster than the wall clock. The timestamps the chargers send are the wall clock
(:meth:`SimClock.stamp`, as text: ``ocppj.timestamps.format_datetime``), shifted by an
explicit ``skew_s`` only: acceleration changes physics and arrivals, not what a station
claims the time is.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta


class SimClock:
    """Wall time scaled by ``rate`` from ``start`` (default: now)."""

    __slots__ = ("_mono0", "_skew", "_start", "rate", "skew_s")

    def __init__(self, start: datetime | None = None, rate: float = 1.0, *, skew_s: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.rate = rate
        self.skew_s = skew_s
        self._skew = timedelta(seconds=skew_s)
        self._start = (start or datetime.now(UTC)).astimezone(UTC)
        self._mono0 = time.monotonic()

    def elapsed_s(self) -> float:
        """Simulated seconds since the clock started."""
        return (time.monotonic() - self._mono0) * self.rate

    def now(self) -> datetime:
        """The simulated time as an aware UTC datetime."""
        return self._start + timedelta(seconds=self.elapsed_s())

    def stamp(self) -> datetime:
        """What the chargers claim the time is: the wall clock plus ``skew_s``."""
        return datetime.now(UTC) + self._skew

    def at(self, elapsed_s: float) -> datetime:
        """The datetime ``elapsed_s`` simulated seconds after the start."""
        return self._start + timedelta(seconds=elapsed_s)

    def real_s(self, sim_s: float) -> float:
        """Wall-clock seconds that ``sim_s`` simulated seconds take."""
        return sim_s / self.rate


def _resolve(fut: asyncio.Future[bool], value: bool) -> None:
    if not fut.done():
        fut.set_result(value)


class Sleeper:
    """A sleep another coroutine can cut short: cheaper than ``wait_for(event.wait())``.

    ``wake()`` while nobody sleeps makes the next ``sleep`` return at once.
    """

    __slots__ = ("_fut", "_pending")

    def __init__(self) -> None:
        self._fut: asyncio.Future[bool] | None = None
        self._pending = False

    async def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when woken early."""
        if self._pending:
            self._pending = False
            return True
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self._fut = fut
        handle = loop.call_later(max(0.0, seconds), _resolve, fut, False)
        try:
            return await fut
        finally:
            handle.cancel()
            self._fut = None

    def wake(self) -> None:
        """End the current (or next) sleep early."""
        if self._fut is not None and not self._fut.done():
            self._fut.set_result(True)
        else:
            self._pending = True
