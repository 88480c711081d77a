"""Which stations a bulk operation is for: an id list, a group or a site.

``Targets`` is what operators write (``{"stations": [...]}``, ``{"group": "g"}`` or
``{"site": "s"}``); a ``TargetResolver`` (the store) turns it into station ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

MAX_TARGET_STATIONS = 100_000


@dataclass(frozen=True, slots=True)
class Targets:
    """Exactly one of: explicit station ids, a group's members, a site's stations."""

    stations: tuple[str, ...] = ()
    group: str | None = None
    site: str | None = None

    def __post_init__(self) -> None:
        given = sum((bool(self.stations), self.group is not None, self.site is not None))
        if given != 1:
            raise ValueError("targets name exactly one of: stations (a non-empty list), group, site")

    @classmethod
    def parse(cls, raw: object) -> Targets:
        """From the operator's JSON object; ValueError says what is wrong."""
        if not isinstance(raw, Mapping):
            raise ValueError("targets must be an object: {stations: [...]} or {group: ...} or {site: ...}")
        unknown = set(raw) - {"stations", "group", "site"}
        if unknown:
            raise ValueError(f"unknown target keys: {', '.join(sorted(map(str, unknown)))}")
        stations = raw.get("stations", ())
        if not isinstance(stations, Sequence) or isinstance(stations, str) or not all(
            isinstance(s, str) and s for s in stations
        ):
            raise ValueError("targets.stations must be a list of station ids")
        if len(stations) > MAX_TARGET_STATIONS:
            raise ValueError(f"targets.stations lists more than {MAX_TARGET_STATIONS} stations")
        group, site = raw.get("group"), raw.get("site")
        for name, value in (("group", group), ("site", site)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"targets.{name} must be a non-empty string")
        return cls(tuple(dict.fromkeys(stations)), group, site)

    def to_json(self) -> dict[str, object]:
        if self.stations:
            return {"stations": list(self.stations)}
        return {"group": self.group} if self.group is not None else {"site": self.site}


class TargetResolver(Protocol):
    """Turns targets into the ids of registered stations, sorted; unknown ids are left out."""

    async def resolve(self, targets: Targets) -> list[str]: ...
