"""Display messages and variable monitoring on 2.0.1 stations: check, send, keep the outcome.

``get_messages`` sends GetDisplayMessages with a fresh ``requestId`` and collects the station's
NotifyDisplayMessages reports for it (they arrive as kept station events on the bus) until one
says ``tbc: false`` or ``wait_s`` passes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from csms.core.events import Event
from csms.display.rules import (
    DisplayMessage,
    MessageState,
    Monitor,
    MonitoringBase,
    MonitorResult,
    Priority,
    check_level,
    check_message,
    check_monitor_id,
    check_monitors,
)
from csms.ocpp.v201 import display as v201
from csms.profiles.calls import RecordedCalls
from csms.profiles.reports import ReportCollector, listed
from csms.profiles.rules import Answer
from ocppj.versions import OcppVersion

Subscribe = Callable[[Callable[[Event], None]], Callable[[], None]]


@dataclass(slots=True)
class MessagesReport:
    """What GetDisplayMessages brought: the answer, the request id and the messages reported."""

    request_id: int
    answer: Answer
    messages: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False  # the last report (tbc false) arrived within the wait


class DisplayService:
    """Display messages and monitors (raises ``DisplayInvalid``, ``VersionUnsupported``, ``ControlError``)."""

    def __init__(
        self, calls: RecordedCalls, subscribe: Subscribe, *, first_request_id: int | None = None
    ) -> None:
        self.calls = calls
        self._subscribe = subscribe
        start = first_request_id if first_request_id is not None else int(time.time()) % 1_000_000_000
        self._request_ids = itertools.count(max(1, start))
        self.reports = ReportCollector("NotifyDisplayMessages", listed("messageInfo"))
        self._unsubscribe: Callable[[], None] | None = None

    def attach(self) -> None:
        self._unsubscribe = self._subscribe(self.on_event)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def on_event(self, event: Event) -> None:
        self.reports.on_event(event)

    def _v201(self, station_id: str, what: str) -> None:
        self.calls.version(station_id, need=OcppVersion.V201, what=what)

    # --- display messages ------------------------------------------------------------------
    async def set_message(self, station_id: str, message: DisplayMessage) -> Answer:
        self._v201(station_id, "display messages")
        check_message(message)
        return await self.calls.send(station_id, v201.set_display_message(message))

    async def get_messages(
        self, station_id: str, *, ids: tuple[int, ...] = (), priority: Priority | None = None,
        state: MessageState | None = None, wait_s: float = 5.0,
    ) -> MessagesReport:
        self._v201(station_id, "display messages")
        request_id = next(self._request_ids)
        with self.reports.expect(station_id, request_id) as collected:
            out = v201.get_display_messages(request_id, ids, priority, state)
            answer = await self.calls.send(station_id, out)
            if answer.status != "Accepted":  # Unknown: the station has no such messages
                return MessagesReport(request_id, answer, complete=True)
            complete = await collected.wait(wait_s)
            return MessagesReport(request_id, answer, list(collected.items), complete)

    async def clear_message(self, station_id: str, message_id: int) -> Answer:
        self._v201(station_id, "display messages")
        return await self.calls.send(station_id, v201.clear_display_message(message_id))

    # --- monitoring ------------------------------------------------------------------------
    async def set_monitors(self, station_id: str, monitors: tuple[Monitor, ...]) -> list[MonitorResult]:
        self._v201(station_id, "variable monitors")
        check_monitors(monitors)
        return await self.calls.send(station_id, v201.set_variable_monitoring(monitors))

    async def set_base(self, station_id: str, base: MonitoringBase) -> Answer:
        self._v201(station_id, "variable monitors")
        return await self.calls.send(station_id, v201.set_monitoring_base(base))

    async def set_level(self, station_id: str, severity: int) -> Answer:
        self._v201(station_id, "variable monitors")
        check_level(severity)
        return await self.calls.send(station_id, v201.set_monitoring_level(severity))

    async def clear_monitor(self, station_id: str, monitor_id: int) -> Answer:
        self._v201(station_id, "variable monitors")
        check_monitor_id(monitor_id)
        return await self.calls.send(station_id, v201.clear_variable_monitoring(monitor_id))
