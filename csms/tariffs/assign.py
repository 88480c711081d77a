"""Which tariff prices a session: the most specific assignment wins.

Precedence: the station's own, its driver's id-tag group, one of the station's groups (by group
name), its site, the default. Pure: the caller gathers what it needs.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence


class Scope(enum.StrEnum):
    STATION = "station"
    TAG_GROUP = "tag_group"
    GROUP = "group"
    SITE = "site"
    DEFAULT = "default"


def pick_tariff(
    assignments: Iterable[tuple[str, str, str]],
    *,
    station_id: str,
    groups: Sequence[str] = (),
    site_id: str | None = None,
    tag_group: str | None = None,
) -> str | None:
    """The tariff id for a session, from (scope, target, tariff_id) assignments; None: no tariff."""
    table = {(scope, target): tariff for scope, target, tariff in assignments}
    candidates = [(Scope.STATION, station_id)]
    if tag_group:
        candidates.append((Scope.TAG_GROUP, tag_group))
    candidates += [(Scope.GROUP, g) for g in sorted(groups)]
    if site_id:
        candidates.append((Scope.SITE, site_id))
    candidates.append((Scope.DEFAULT, ""))
    for scope, target in candidates:
        found = table.get((scope.value, target))
        if found is not None:
            return found
    return None
