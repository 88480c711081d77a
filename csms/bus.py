"""In-process event bus: synchronous fan-out by event type, plus bounded async queues.

Publishing never blocks and never raises: a failing subscriber is logged, a full
queue drops the event and counts it (queues are for best-effort consumers such
as the console; durable consumers buffer on their own side).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import structlog

from csms.core.events import Event

log = structlog.get_logger(__name__)

E = TypeVar("E", bound=Event)
Handler = Callable[[Event], None]


class Subscription:
    """A bounded queue of events; iterate it with ``async for``."""

    def __init__(self, bus: Bus, types: tuple[type[Event], ...], maxsize: int) -> None:
        self._bus = bus
        self.types = types
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    def close(self) -> None:
        self._bus.unsubscribe(self.offer)

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()


class Bus:
    """Typed publish/subscribe within one process."""

    def __init__(self) -> None:
        self._handlers: list[tuple[tuple[type[Event], ...], Handler]] = []
        self._by_type: dict[type[Event], tuple[Handler, ...]] = {}

    def subscribe(self, handler: Handler, *types: type[Event]) -> Callable[[], None]:
        """Call ``handler`` for events of ``types`` (all events when none given)."""
        self._handlers.append((types or (Event,), handler))
        self._by_type.clear()
        return lambda: self.unsubscribe(handler)

    def unsubscribe(self, handler: Handler) -> None:
        self._handlers = [(t, h) for t, h in self._handlers if h is not handler]
        self._by_type.clear()

    def queue(self, *types: type[Event], maxsize: int = 10_000) -> Subscription:
        """A bounded queue receiving events of ``types``."""
        sub = Subscription(self, types or (Event,), maxsize)
        self.subscribe(sub.offer, *sub.types)
        return sub

    def _handlers_for(self, cls: type[Event]) -> tuple[Handler, ...]:
        handlers = self._by_type.get(cls)
        if handlers is None:
            handlers = tuple(h for types, h in self._handlers if issubclass(cls, types))
            self._by_type[cls] = handlers
        return handlers

    def wants(self, cls: type[Event]) -> bool:
        """True when someone subscribes to events of ``cls`` (lets producers skip work)."""
        handlers = self._by_type.get(cls)  # per message: one lookup in the common case
        return bool(handlers if handlers is not None else self._handlers_for(cls))

    def publish(self, event: Event) -> None:
        for handler in self._handlers_for(type(event)):
            try:
                handler(event)
            except Exception:
                log.exception("bus subscriber failed", event=type(event).__name__)
