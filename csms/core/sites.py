"""Sites, station groups and connector specifications: what operators organise stations by.

A site is where stations stand (shaped after an OCPI 2.2.1 Location, so one can be exposed from
it); a group is a label a station may carry any number of; a connector spec says what plug a
connector has and how much power it can give (OCPI Connector).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
SITE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,35}$")


class ConnectorStandard(enum.StrEnum):
    """OCPI ConnectorType values for the plugs public chargers have."""

    IEC_62196_T1 = "IEC_62196_T1"
    IEC_62196_T1_COMBO = "IEC_62196_T1_COMBO"
    IEC_62196_T2 = "IEC_62196_T2"
    IEC_62196_T2_COMBO = "IEC_62196_T2_COMBO"
    CHADEMO = "CHADEMO"
    TESLA_S = "TESLA_S"
    DOMESTIC_F = "DOMESTIC_F"
    GBT_AC = "GBT_AC"
    GBT_DC = "GBT_DC"


class ConnectorFormat(enum.StrEnum):
    SOCKET = "SOCKET"
    CABLE = "CABLE"


class PowerType(enum.StrEnum):
    AC_1_PHASE = "AC_1_PHASE"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    """One connector of one EVSE (1.6 stations: evse_id = connector_id, connector_id = 1)."""

    evse_id: int
    connector_id: int
    standard: ConnectorStandard
    max_power_w: int
    format: ConnectorFormat = ConnectorFormat.SOCKET
    power_type: PowerType = PowerType.AC_3_PHASE


@dataclass(frozen=True, slots=True)
class Site:
    """A place with stations: address, coordinates, operator and opening hours."""

    site_id: str
    name: str
    address: str = ""
    city: str = ""
    postal_code: str = ""
    country: str = ""
    latitude: float | None = None
    longitude: float | None = None
    operator: str = ""
    time_zone: str = "UTC"
    opening_hours: Mapping[str, object] | None = None  # OCPI Hours; None: not published
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a station belongs: its site (if any) and its groups."""

    site_id: str | None = None
    groups: tuple[str, ...] = field(default=())


def check_group_name(name: str) -> str:
    """``name`` if it is a valid group name (1-64 of letters, digits, ``._:-``), else ValueError."""
    if not GROUP_NAME.match(name):
        raise ValueError(
            f"group name {name!r} must be 1-64 letters, digits or . _ : - (starting alphanumeric)"
        )
    return name
