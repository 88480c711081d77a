"""Keepalive for every station from one task: ping the connections that went quiet.

websockets' own keepalive runs one task per connection that pings every ``ping_interval``
whether or not the station is talking; with tens of thousands of stations that is a task, a
timer and a sleeping coroutine each (~1.4 KiB) and a ping per station per interval. Here a
single sweep pings only connections that sent nothing for ``interval_s`` (a frame received
proves the peer alive) and closes those whose pong does not come within ``timeout_s``
(close code 1011, as websockets does). The sweep visits a slice of the stations every tick
(every station once per quarter of the interval) and caps the pings per tick, so 20,000
stations are neither visited nor pinged in one long burst that would stall the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

import structlog
from websockets.exceptions import ConnectionClosed

log = structlog.get_logger("csms.ocpp")


class Peer(Protocol):
    """What the sweep needs of a station's socket (``csms.gateway.station.StationProtocol``)."""

    frames_in: int  # messages received so far
    keepalive_mark: tuple[int, float]  # (frames_in, when) at the sweep that last saw it change
    station_id: str

    async def ping(self) -> Awaitable[float]:
        """Send a ping; the result completes with the latency when the pong arrives."""

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class KeepaliveSweep:
    """Pings idle connections of ``peers()`` and drops the ones that stopped answering."""

    def __init__(
        self, peers: Callable[[], Iterable[Peer]], *, interval_s: float, timeout_s: float | None,
        max_pings_per_step: int = 500, tick_s: float = 0.25, clock: Callable[[], float] | None = None,
        on_pings: Callable[[int], object] | None = None, on_timeout: Callable[[], object] | None = None,
    ) -> None:
        self.on_pings = on_pings  # e.g. a Prometheus counter's ``inc``
        self.on_timeout = on_timeout
        self.peers = peers
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.max_pings_per_step = max_pings_per_step
        self.period_s = max(0.05, min(interval_s, timeout_s or interval_s) / 4)  # one round
        self.tick_s = min(tick_s, self.period_s)
        self._clock = clock
        self._round: list[Peer] = []
        self._cursor = 0
        self._pinging: set[asyncio.Task[None]] = set()
        self._awaiting: set[Peer] = set()  # a ping (or the close after its timeout) in progress
        self.pings_sent = 0
        self.timeouts = 0

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def run(self) -> None:
        """Step every ``tick_s`` until cancelled."""
        try:
            while True:
                await asyncio.sleep(self.tick_s)
                self.step()
        finally:
            for task in list(self._pinging):
                task.cancel()

    def step(self) -> int:
        """Visit the next slice of the round: every peer is visited once per ``period_s``, a
        slice per tick, so neither the visits nor the pings come in one long burst."""
        if self._cursor >= len(self._round):
            self._round, self._cursor = list(self.peers()), 0
        chunk = max(1, math.ceil(len(self._round) * self.tick_s / self.period_s))
        part = self._round[self._cursor:self._cursor + chunk]
        self._cursor += chunk
        return self._visit(part)

    def sweep(self) -> int:
        """Visit every peer now; returns how many were pinged (at most ``max_pings_per_step``)."""
        return self._visit(list(self.peers()))

    def _visit(self, peers: list[Peer]) -> int:
        now = self._now()
        budget = self.max_pings_per_step
        for peer in peers:
            seen, since = peer.keepalive_mark
            if peer.frames_in != seen:
                peer.keepalive_mark = (peer.frames_in, now)
            elif now - since >= self.interval_s and budget > 0 and peer not in self._awaiting:
                budget -= 1
                peer.keepalive_mark = (seen, now)  # next ping one interval later at the earliest
                task = asyncio.get_running_loop().create_task(self._ping(peer))
                self._pinging.add(task)
                task.add_done_callback(self._pinging.discard)
        sent = self.max_pings_per_step - budget
        self.pings_sent += sent
        if sent and self.on_pings is not None:
            self.on_pings(sent)
        return sent

    async def _ping(self, peer: Peer) -> None:
        self._awaiting.add(peer)
        try:
            pong = await peer.ping()
            if self.timeout_s is None:
                return
            async with asyncio.timeout(self.timeout_s):
                await pong
        except ConnectionClosed:
            return
        except TimeoutError:
            self.timeouts += 1
            if self.on_timeout is not None:
                self.on_timeout()
            log.info("station silent: no pong to keepalive ping, closing", station_id=peer.station_id)
            with contextlib.suppress(ConnectionClosed):
                await peer.close(1011, "keepalive ping timeout")
        finally:
            self._awaiting.discard(peer)
