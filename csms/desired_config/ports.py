"""What the desired-configuration service needs from outside: the stations and the groups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from csms.desired_config.rules import DesiredItem, Reading, ResultStatus
from ocppj.versions import OcppVersion

Answer = tuple[ResultStatus, str | None]


class StationConfig(Protocol):
    """Send desired values to a connected station and read them back, in its own version."""

    def protocol_of(self, station_id: str) -> OcppVersion | None:
        """The connected station's version; None when it is not connected."""
        ...

    async def apply(
        self, station_id: str, version: OcppVersion, items: Sequence[DesiredItem]
    ) -> dict[str, Answer]:
        """Each item's answer by key (``Failed`` with the reason when no answer came)."""
        ...

    async def read(
        self, station_id: str, version: OcppVersion, items: Sequence[DesiredItem]
    ) -> dict[str, Reading]:
        """The station's current values of ``items``; raises ``ControlError`` when it cannot tell."""
        ...


class GroupDirectory(Protocol):
    """Which groups a station is in, and which registered stations a group has."""

    async def groups_of(self, station_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Each station's groups (every id given is a key)."""
        ...

    async def members(self, group: str) -> list[str]:
        """Registered members, sorted (the default set: every registered station)."""
        ...
