"""What the security parts read and write, and the store port that provides it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StationCredentials:
    """A registered station's security settings; hashes are never shown to anyone."""

    station_id: str
    security_profile: int
    password_hash: str | None = None
    pending_password_hash: str | None = None  # set while a rotation awaits the station's answer
    serial_number: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A certificate the CSMS's CA signed for a station."""

    station_id: str
    serial: str  # hex
    subject: str
    not_before: datetime
    not_after: datetime
    pem: str
    status: str  # Sent | Accepted | Rejected | Failed


class SecurityStore(Protocol):
    """Durable security state (implemented by ``csms.store.sql.SqlStore``)."""

    async def get_credentials(self, station_id: str) -> StationCredentials | None: ...
    async def set_pending_password(self, station_id: str, password_hash: str) -> None: ...
    async def finish_password_rotation(
        self, station_id: str, *, accepted: bool, pending_hash: str | None = None
    ) -> None: ...
    async def save_certificate(self, cert: IssuedCertificate) -> None: ...
    async def set_certificate_status(self, serial: str, status: str) -> None: ...
    async def list_certificates(self, station_id: str | None = None) -> list[IssuedCertificate]: ...
