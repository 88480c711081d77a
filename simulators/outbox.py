"""The ordered queue of a charger's outgoing CALLs.

Transaction messages (start, meter values, stop) survive disconnects and are sent, in
order, once the charger is back online; a timed-out one is retried up to ``attempts``
times. Everything else is stale once the connection is gone: it is dropped (and whoever
waits for its answer gets None). Payloads are built when sent, so a 1.6 message queued
before its StartTransaction was answered carries the transactionId by then.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulators.clock import Sleeper
from simulators.dialect import Build, OnAnswer
from simulators.link import CallFailed, Link


@dataclass(slots=True)
class Outgoing:
    """One queued CALL: its action, how to build the payload, what to do with the answer."""

    action: str
    build: Build
    transactional: bool = False
    on_answer: OnAnswer | None = None
    waiter: asyncio.Future[dict[str, Any] | None] | None = None
    attempts: int = 0

    def resolve(self, response: dict[str, Any] | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(response)


Acknowledged = Callable[[str, dict[str, Any], dict[str, Any]], None]
"""Told ``(action, payload, response)`` of every transaction message the CSMS answered."""


class Outbox:
    """FIFO of :class:`Outgoing`; ``wake`` tells the sender something arrived."""

    __slots__ = ("_items", "acknowledged", "attempts", "wake")

    def __init__(self, *, attempts: int = 3, acknowledged: Acknowledged | None = None) -> None:
        self._items: deque[Outgoing] = deque()
        self.attempts = attempts
        self.acknowledged = acknowledged
        self.wake = Sleeper()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, entry: Outgoing, *, online: bool, front: bool = False) -> bool:
        """Queue ``entry``; False (and dropped) when offline and not transactional."""
        if not online and not entry.transactional:
            entry.resolve(None)
            return False
        if front:
            self._items.appendleft(entry)
        else:
            self._items.append(entry)
        self.wake.wake()
        return True

    def drop_stale(self) -> None:
        """After a disconnect: keep only the transaction messages."""
        kept: deque[Outgoing] = deque()
        for entry in self._items:
            if entry.transactional:
                kept.append(entry)
            else:
                entry.resolve(None)
        self._items = kept

    def transactional(self) -> int:
        """How many transaction messages are waiting."""
        return sum(1 for entry in self._items if entry.transactional)

    async def send_next(self, link: Link) -> None:
        """Send the head of the queue; LinkClosed leaves it queued for the next connection."""
        entry = self._items[0]
        payload = entry.build()
        try:
            response = await link.call(entry.action, payload)
        except CallFailed as exc:
            self._items.popleft()
            entry.attempts += 1
            if entry.transactional and exc.kind == "timeout" and entry.attempts < self.attempts:
                self._items.appendleft(entry)
            else:
                entry.resolve(None)
            return
        self._items.popleft()
        if entry.transactional and self.acknowledged is not None:
            self.acknowledged(entry.action, payload, response)
        if entry.on_answer is not None:
            entry.on_answer(response)
        entry.resolve(response)
