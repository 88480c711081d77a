"""Reports that answer a request in later messages (NotifyDisplayMessages, ReportChargingProfiles):
collected from the kept station events on the bus by ``requestId`` until one says ``tbc: false``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from csms.core.events import Event, StationReported

Items = Callable[[Mapping[str, object]], list[dict[str, Any]]]


@dataclass(slots=True)
class Collected:
    """The items of one request's reports so far, and whether the last has come."""

    station_id: str
    items: list[dict[str, Any]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self, wait_s: float) -> bool:
        """True once the last report came (within ``wait_s``)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done.wait(), wait_s)
        return self.done.is_set()


class ReportCollector:
    """Collects the ``action`` reports of pending requests; ``items`` reads one report's items."""

    def __init__(self, action: str, items: Items) -> None:
        self.action = action
        self.items = items
        self._pending: dict[int, Collected] = {}

    @contextlib.contextmanager
    def expect(self, station_id: str, request_id: int) -> Iterator[Collected]:
        """Collect the reports for ``request_id`` from ``station_id`` inside the block."""
        collected = self._pending[request_id] = Collected(station_id)
        try:
            yield collected
        finally:
            del self._pending[request_id]

    def on_event(self, event: Event) -> None:
        if not isinstance(event, StationReported) or event.action != self.action:
            return
        request_id = event.data.get("requestId")
        collected = self._pending.get(request_id) if isinstance(request_id, int) else None
        if collected is None or collected.station_id != event.station_id:
            return
        collected.items.extend(self.items(event.data))
        if not event.data.get("tbc"):
            collected.done.set()


def listed(key: str) -> Items:
    """The dicts of the report's list ``key``."""
    def items(data: Mapping[str, object]) -> list[dict[str, Any]]:
        value = data.get(key)
        return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []
    return items
