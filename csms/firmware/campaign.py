"""Firmware campaigns, pure: which stations get UpdateFirmware when, and what their progress means.

A campaign updates its stations in waves of ``wave_size`` (in the order they were resolved).
``tick(now, live)`` returns the ``UpdateOrder``s to send now; the station's messages come in
through ``on_sent`` (the command's answer), ``on_status`` (Firmware/SignedFirmwareStatusNotification)
and ``on_boot`` (BootNotification). A station is ``installed`` only once it boots reporting the
target version. A failed attempt (rejected command, a failure status, no progress within
``station_timeout_s``, or still offline ``station_timeout_s`` after its turn came) is retried up
to ``max_retries`` times, then the station is ``failed``. The next wave starts once
``ceil(success_threshold x (wave stations - failed))`` of the current one are installed: failed
stations never block a campaign, stragglers keep going while the next wave runs. Pausing stops
new sends; aborting stops them for good (stations not yet started become ``cancelled``).
Every change is recorded in ``changed`` for the service to persist.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta


class CampaignState(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    ABORTED = "aborted"


class StationState(enum.StrEnum):
    PENDING = "pending"  # not sent yet (or waiting for a retry)
    UPDATING = "updating"  # UpdateFirmware accepted, progress expected
    INSTALLED = "installed"  # booted reporting the target version
    FAILED = "failed"  # out of attempts
    CANCELLED = "cancelled"  # the campaign was aborted before the station started


SETTLED = frozenset({StationState.INSTALLED, StationState.FAILED, StationState.CANCELLED})
FAILURE_STATUSES = frozenset({
    "DownloadFailed", "InstallationFailed", "InvalidSignature", "InstallVerificationFailed",
    "InvalidCertificate", "RevokedCertificate",
})
MAX_RETRIES = 100


class TransitionNotAllowed(Exception):
    """pause/resume/abort asked of a campaign in a state that does not allow it."""


@dataclass(frozen=True, slots=True)
class Window:
    """A daily UTC time window (``start`` > ``end`` wraps past midnight)."""

    start: time
    end: time

    def contains(self, now: datetime) -> bool:
        t = now.time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignSpec:
    """What the operator asked for (fixed at creation)."""

    version: str
    location: str | None = None  # an external URL, or
    file_id: str | None = None  # an image kept by the CSMS
    wave_size: int = 10
    success_threshold: float = 1.0
    max_retries: int = 2
    window: Window | None = None
    retrieve_at: datetime | None = None
    signature: str | None = None
    signing_certificate: str | None = None
    station_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if (self.location is None) == (self.file_id is None):
            raise ValueError("give exactly one of location and file_id")
        if not self.version:
            raise ValueError("version must not be empty")
        if self.wave_size < 1:
            raise ValueError("wave_size must be at least 1")
        if not 0.0 <= self.success_threshold <= 1.0:
            raise ValueError("success_threshold must be between 0 and 1")
        if not 0 <= self.max_retries <= MAX_RETRIES:
            raise ValueError(f"max_retries must be 0..{MAX_RETRIES}")
        if self.station_timeout_s <= 0:
            raise ValueError("station_timeout_s must be > 0")
        if (self.signature is None) != (self.signing_certificate is None):
            raise ValueError("signature and signing_certificate go together")

    @property
    def signed(self) -> bool:
        return self.signature is not None


@dataclass(slots=True, kw_only=True)
class StationRun:
    """One station in a campaign."""

    charger_id: str
    wave: int
    state: StationState = StationState.PENDING
    last_status: str | None = None
    updated_at: datetime
    attempts: int = 0
    request_id: int | None = None
    turn_at: datetime | None = None  # when its wave began (or its attempt was sent)


@dataclass(frozen=True, slots=True)
class LiveStation:
    """What the campaign needs to know of a station right now."""

    online: bool
    firmware_version: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FirmwareRequest:
    """One UpdateFirmware as both OCPP versions need it (signed when ``signature`` is given)."""

    location: str
    retrieve_at: datetime
    request_id: int
    signature: str | None = None
    signing_certificate: str | None = None


@dataclass(frozen=True, slots=True)
class UpdateOrder:
    """Send UpdateFirmware (or SignedUpdateFirmware) to ``charger_id``."""

    charger_id: str
    request_id: int
    attempt: int


@dataclass(slots=True, kw_only=True)
class Campaign:
    """A campaign's state machine."""

    id: int
    spec: CampaignSpec
    state: CampaignState
    created_at: datetime
    updated_at: datetime
    current_wave: int = 0
    stations: dict[str, StationRun] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)  # station ids changed since the last take
    campaign_changed: bool = False

    @classmethod
    def new(cls, campaign_id: int, spec: CampaignSpec, charger_ids: Iterable[str], now: datetime) -> Campaign:
        ids = list(dict.fromkeys(charger_ids))
        if not ids:
            raise ValueError("the targets name no registered station")
        stations = {
            cid: StationRun(charger_id=cid, wave=i // spec.wave_size, updated_at=now)
            for i, cid in enumerate(ids)
        }
        c = cls(id=campaign_id, spec=spec, state=CampaignState.RUNNING, created_at=now, updated_at=now,
                stations=stations)
        for run in c._wave(0):
            run.turn_at = now
        return c

    # --- queries ---------------------------------------------------------------------------
    @property
    def waves(self) -> int:
        return 1 + max(r.wave for r in self.stations.values())

    @property
    def active(self) -> bool:
        return self.state in (CampaignState.RUNNING, CampaignState.PAUSED)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in StationState}
        for r in self.stations.values():
            out[r.state.value] += 1
        return out

    def wave_counts(self) -> list[dict[str, int]]:
        out = [{s.value: 0 for s in StationState} for _ in range(self.waves)]
        for r in self.stations.values():
            out[r.wave][r.state.value] += 1
        return out

    def take_changes(self) -> tuple[bool, list[StationRun]]:
        """(campaign row changed, station rows changed) since the last call."""
        runs = [self.stations[c] for c in sorted(self.changed)]
        changed = self.campaign_changed
        self.changed.clear()
        self.campaign_changed = False
        return changed, runs

    # --- operator transitions ------------------------------------------------------------------
    def pause(self, now: datetime) -> None:
        if self.state is not CampaignState.RUNNING:
            raise TransitionNotAllowed(f"only a running campaign can be paused (it is {self.state.value})")
        self._set_state(CampaignState.PAUSED, now)

    def resume(self, now: datetime) -> None:
        if self.state is not CampaignState.PAUSED:
            raise TransitionNotAllowed(f"only a paused campaign can be resumed (it is {self.state.value})")
        self._set_state(CampaignState.RUNNING, now)
        for run in self._wave_upto(self.current_wave):  # waiting time restarts
            if run.state is StationState.PENDING:
                run.turn_at = now

    def abort(self, now: datetime) -> None:
        if not self.active:
            raise TransitionNotAllowed(f"a {self.state.value} campaign cannot be aborted")
        self._set_state(CampaignState.ABORTED, now)
        for run in self.stations.values():
            if run.state is StationState.PENDING:
                self._update(run, now, state=StationState.CANCELLED)

    def unsent(self, charger_id: str, now: datetime) -> bool:
        """The campaign was aborted before an ordered UpdateFirmware went out: True (the station is
        cancelled, the order must not be sent) or False (send it)."""
        run = self.stations.get(charger_id)
        if self.state is not CampaignState.ABORTED or run is None or run.state is not StationState.UPDATING:
            return False
        self._update(run, now, state=StationState.CANCELLED, attempts=run.attempts - 1,
                     last_status="aborted before sending")
        return True

    # --- what stations say ---------------------------------------------------------------------
    def on_sent(self, charger_id: str, accepted: bool, detail: str | None, now: datetime) -> None:
        """The answer to UpdateFirmware (``detail``: why it was not accepted)."""
        run = self.stations.get(charger_id)
        if run is None or run.state is not StationState.UPDATING:
            return
        if accepted:
            self._update(run, now, last_status="Accepted", turn_at=now)
        else:
            self._failed_attempt(run, detail or "Rejected", now)

    def on_status(self, charger_id: str, status: str, now: datetime, request_id: int | None = None) -> None:
        """A Firmware/SignedFirmwareStatusNotification (one naming another request is ignored)."""
        run = self.stations.get(charger_id)
        if run is None or run.state is not StationState.UPDATING or status == "Idle":
            return
        if request_id is not None and run.request_id is not None and request_id != run.request_id:
            return
        if status in FAILURE_STATUSES:
            self._failed_attempt(run, status, now)
        else:
            self._update(run, now, last_status=status, turn_at=now)

    def on_boot(self, charger_id: str, firmware_version: str | None, now: datetime) -> None:
        """A BootNotification: the target version means installed."""
        run = self.stations.get(charger_id)
        if run is None or run.state is not StationState.UPDATING:
            return
        if firmware_version == self.spec.version:
            self._update(run, now, state=StationState.INSTALLED, last_status=f"Booted {firmware_version}")
        elif run.last_status == "Installed":  # it installed, rebooted, and runs something else
            self._failed_attempt(run, f"booted {firmware_version or 'without a version'}", now)

    # --- the scheduler -------------------------------------------------------------------------
    def tick(self, now: datetime, live: Callable[[str], LiveStation]) -> list[UpdateOrder]:
        """Time out silent stations, move the waves on, and return the orders to send now."""
        if not self.active and self.state is not CampaignState.ABORTED:
            return []
        timeout = timedelta(seconds=self.spec.station_timeout_s)
        for run in self.stations.values():
            if run.state is StationState.UPDATING and run.turn_at is not None and now - run.turn_at > timeout:
                self._failed_attempt(run, "timeout: no progress", now)
        if self.state is CampaignState.ABORTED:
            return []
        self._advance_waves(now)
        if self._all_settled():
            self._set_state(CampaignState.DONE, now)
            return []
        if self.state is not CampaignState.RUNNING:
            return []
        in_window = self.spec.window is None or self.spec.window.contains(now)
        orders: list[UpdateOrder] = []
        for run in self._wave_upto(self.current_wave):
            if run.state is not StationState.PENDING:
                continue
            station = live(run.charger_id)
            if station.firmware_version == self.spec.version and station.online:
                self._update(run, now, state=StationState.INSTALLED, last_status="already on the version")
                continue
            if not station.online:
                if run.turn_at is not None and now - run.turn_at > timeout:
                    self._failed_attempt(run, "timeout: offline", now, counts=True)
                elif run.last_status != "offline":
                    self._update(run, now, last_status="offline")
                continue
            if not in_window:
                continue
            attempt = run.attempts + 1
            request_id = self.id * 1000 + attempt
            self._update(run, now, state=StationState.UPDATING, attempts=attempt, request_id=request_id,
                         last_status="Sent", turn_at=now)
            orders.append(UpdateOrder(run.charger_id, request_id, attempt))
        self._advance_waves(now)
        return orders

    # --- internals -----------------------------------------------------------------------------
    def _wave(self, wave: int) -> list[StationRun]:
        return [r for r in self.stations.values() if r.wave == wave]

    def _wave_upto(self, wave: int) -> list[StationRun]:
        return [r for r in self.stations.values() if r.wave <= wave]

    def _all_settled(self) -> bool:
        return all(r.state in SETTLED for r in self.stations.values())

    def wave_ready(self, wave: int) -> bool:
        """Enough of ``wave`` installed for the next to start."""
        runs = self._wave(wave)
        failed = sum(r.state is StationState.FAILED for r in runs)
        installed = sum(r.state is StationState.INSTALLED for r in runs)
        return installed >= math.ceil(self.spec.success_threshold * (len(runs) - failed) - 1e-9)

    def _advance_waves(self, now: datetime) -> None:
        while self.current_wave + 1 < self.waves and self.wave_ready(self.current_wave):
            self.current_wave += 1
            self.campaign_changed = True
            self.updated_at = now
            for run in self._wave(self.current_wave):
                self._update(run, now, turn_at=now)

    def _failed_attempt(self, run: StationRun, why: str, now: datetime, *, counts: bool = False) -> None:
        attempts = run.attempts + 1 if counts else run.attempts
        if attempts > self.spec.max_retries:
            self._update(run, now, state=StationState.FAILED, last_status=why, attempts=attempts)
        else:
            state = StationState.PENDING if self.state is not CampaignState.ABORTED else StationState.FAILED
            self._update(run, now, state=state, last_status=why, attempts=attempts, turn_at=now)

    def _set_state(self, state: CampaignState, now: datetime) -> None:
        self.state = state
        self.updated_at = now
        self.campaign_changed = True

    def _update(self, run: StationRun, now: datetime, **changes: object) -> None:
        for name, value in changes.items():
            setattr(run, name, value)
        run.updated_at = now
        self.changed.add(run.charger_id)
