"""The firmware service: keeps images, runs campaigns on a tick, persists every transition.

Decisions are the pure ``csms.firmware.campaign.Campaign``'s; this module feeds it the station's
messages from the bus, sends what ``tick`` orders through an ``UpdateSender`` and saves what changed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from csms.cluster.elected import Elected, always
from csms.core.events import Event, StationBooted, StationReported
from csms.core.ports import Clock
from csms.core.targets import TargetResolver, Targets
from csms.firmware.campaign import (
    SETTLED,
    Campaign,
    CampaignSpec,
    CampaignState,
    FirmwareRequest,
    LiveStation,
    StationState,
    TransitionNotAllowed,
    UpdateOrder,
)
from csms.firmware.files import DownloadTokens, FirmwareBlobs, Stored
from csms.store.firmware import FirmwareFile, SqlFirmware

log = structlog.get_logger("csms.firmware")

FIRMWARE_ACTIONS = frozenset({"FirmwareStatusNotification", "SignedFirmwareStatusNotification"})
WATCHED: tuple[type[Event], ...] = (StationReported, StationBooted)


def firmware_news(ev: Event) -> bool:
    """What of ``WATCHED`` a campaign may need: boots and firmware status notifications."""
    return not isinstance(ev, StationReported) or ev.action in FIRMWARE_ACTIONS


class UpdateSender(Protocol):
    """Sends one UpdateFirmware in the station's protocol; (accepted, why not)."""

    async def send(self, charger_id: str, request: FirmwareRequest) -> tuple[bool, str | None]: ...


class Conflict(Exception):
    """The request clashes with the current state (a station already in a campaign, a file in use)."""


class NotFound(Exception):
    """No such campaign or file."""


@dataclass(frozen=True, slots=True)
class Order:
    campaign_id: int
    order: UpdateOrder


class FirmwareService:
    """Campaigns in memory while active (running, paused, or aborted with stations still updating).

    Across core nodes only the node elected to schedule (``run``'s ``elected``) keeps campaigns in
    memory, sees every station's progress (the plugin subscribes ``on_event`` cluster-wide) and
    writes the campaigns; it reads them all from the store when it takes over, and every tick
    adopts what the operator did through another node (a new campaign, pause, resume, abort),
    which that node wrote to the store only.
    """

    def __init__(
        self, store: SqlFirmware, blobs: FirmwareBlobs, tokens: DownloadTokens, sender: UpdateSender,
        clock: Clock, live: Callable[[str], LiveStation], targets: TargetResolver, *, tick_s: float = 1.0,
        download_ttl_s: float = 86_400,
        max_parallel_sends: int = 50,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.tokens = tokens
        self.sender = sender
        self.clock = clock
        self.live = live
        self.targets = targets
        self.tick_s = tick_s
        self.download_ttl_s = download_ttl_s
        self.public_base_url = ""  # where stations reach the HTTP server; campaigns hold while unset
        self.campaigns: dict[int, Campaign] = {}
        self._wake = asyncio.Event()
        self._sends = asyncio.Semaphore(max_parallel_sends)
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()  # creation vs the conflict check
        self.leading = True  # this node schedules the campaigns (False: another core node does)
        self._operator_changes = 0  # pause/resume/abort through this node, counted (``adopt``)
        self._changing = 0  # of those, being written now

    async def load(self) -> None:
        self.campaigns = {c.id: c for c in await self.store.load_active()}

    # --- files -------------------------------------------------------------------------------
    async def add_file(self, name: str, chunks: AsyncIterator[bytes]) -> FirmwareFile:
        stored: Stored = await self.blobs.store(chunks)
        f = FirmwareFile(stored.file_id, name, stored.size, stored.sha256, self.clock.now())
        await self.store.add_file(f)
        return f

    async def delete_file(self, file_id: str) -> None:
        f = await self.store.get_file(file_id)
        if f is None:
            raise NotFound(f"firmware file {file_id} not found")
        used = await self.store.file_in_active_campaign(file_id)
        if used is not None:
            raise Conflict(f"firmware file {file_id} is used by campaign {used}, which is still active")
        deleted, shared = await self.store.delete_file(file_id)
        if deleted and not shared:
            await self.blobs.remove(f.sha256)

    async def download(self, token: str) -> FirmwareFile:
        """The file a download token grants (TokenInvalid, TokenExpired, NotFound)."""
        file_id = self.tokens.check(token, self.clock.now())
        f = await self.store.get_file(file_id)
        if f is None:
            raise NotFound("the file was deleted")
        return f

    def download_url(self, file_id: str, retrieve_at: datetime) -> str:
        expires = max(retrieve_at, self.clock.now()) + timedelta(seconds=self.download_ttl_s)
        return f"{self.public_base_url}/firmware/{self.tokens.issue(file_id, expires)}"

    # --- campaigns -----------------------------------------------------------------------------
    async def create(self, spec: CampaignSpec, targets: Targets) -> Campaign:
        """A running campaign over the targets' registered stations (NotFound: no such file;
        ValueError: no station; Conflict: a station is still in another active campaign)."""
        if spec.file_id is not None and await self.store.get_file(spec.file_id) is None:
            raise NotFound(f"firmware file {spec.file_id} not found")
        charger_ids = await self.targets.resolve(targets)
        if not charger_ids:
            raise ValueError("the targets name no registered station")
        async with self._lock:
            wanted = set(charger_ids)
            active = self.campaigns.values() if self.leading else await self.store.load_active()
            for other in active:
                busy = sorted(cid for cid, run in other.stations.items()
                              if cid in wanted and run.state not in SETTLED)
                if busy:
                    raise Conflict(f"station {busy[0]} is still in campaign {other.id}")
            now = self.clock.now()
            campaign = await self.store.create_campaign(spec, targets.to_json(), charger_ids, now)
            if self.leading:  # else the scheduling node adopts it from the store at its next tick
                self.campaigns[campaign.id] = campaign
        self._wake.set()
        log.info("firmware campaign created", campaign=campaign.id, version=spec.version,
                 stations=len(campaign.stations), waves=campaign.waves)
        return campaign

    async def get(self, campaign_id: int) -> Campaign | None:
        return self.campaigns.get(campaign_id) or await self.store.load(campaign_id)

    async def transition(self, campaign_id: int, action: str) -> Campaign:
        """pause, resume or abort (TransitionNotAllowed, NotFound)."""
        campaign = self.campaigns.get(campaign_id)
        if campaign is None:
            stored = await self.store.load(campaign_id)
            if stored is None:
                raise NotFound(f"campaign {campaign_id} not found")
            campaign = stored
        now = self.clock.now()
        self._operator_changes += 1  # ``adopt`` must not apply a state read before this is written
        self._changing += 1
        try:
            {"pause": campaign.pause, "resume": campaign.resume, "abort": campaign.abort}[action](now)
            await self.store.save(campaign)
        finally:
            self._changing -= 1
        self._wake.set()
        log.info("firmware campaign " + {"pause": "paused", "resume": "resumed", "abort": "aborted"}[action],
                 campaign=campaign_id)
        return campaign

    # --- the station's messages ----------------------------------------------------------------
    def on_event(self, ev: Event) -> None:
        """Bus handler: progress, failures and boots go to the campaigns holding the station. Every
        kept message passes here (status notifications...): others return before reading the clock."""
        if isinstance(ev, StationReported):
            if ev.action not in FIRMWARE_ACTIONS:
                return
            status = ev.data.get("status")
            request_id = ev.data.get("requestId")
            if not isinstance(status, str):
                return
            now = self.clock.now()
            for c in self.campaigns.values():
                c.on_status(ev.station_id, status, now, request_id if isinstance(request_id, int) else None)
        elif isinstance(ev, StationBooted):
            now = self.clock.now()
            for c in self.campaigns.values():
                c.on_boot(ev.station_id, ev.info.firmware_version, now)
        else:
            return
        self._wake.set()

    # --- the loop ----------------------------------------------------------------------------
    def tick(self, now: datetime) -> list[Order]:
        """Every active campaign's decisions at ``now``: the UpdateFirmware calls to send.

        Nothing moves while the public base URL is unknown: a download link needs it.
        """
        if not self.public_base_url:
            return []
        orders: list[Order] = []
        for c in list(self.campaigns.values()):
            orders.extend(Order(c.id, o) for o in c.tick(now, self.live))
        return orders

    async def lead(self, elected: bool) -> None:
        """Before a tick: on taking over, the campaigns as the store has them; while leading, what
        other nodes changed; on losing the lead, nothing kept (the new leader writes them)."""
        if not elected:
            if self.leading:
                self.leading = False
                self.campaigns.clear()
            return
        if not self.leading:
            self.leading = True
            await self.load()
            log.info("firmware campaigns taken over", active=len(self.campaigns))
            return
        await self.adopt()

    async def adopt(self) -> None:
        """Campaigns created, paused, resumed or aborted through another node (written to the store
        only): created ones are loaded, the others' transitions applied to the ones in memory."""
        if self._changing:
            return  # an operator's change through this node is being written: next tick
        seen = self._operator_changes
        states = await self.store.states(list(self.campaigns))
        if self._changing or self._operator_changes != seen:
            return  # read while an operator's change through this node was written: stale, next tick
        now = self.clock.now()
        for campaign_id, state in states.items():
            c = self.campaigns.get(campaign_id)
            if c is None:
                if state in (CampaignState.RUNNING, CampaignState.PAUSED):
                    loaded = await self.store.load(campaign_id)
                    if loaded is not None:
                        self.campaigns[campaign_id] = loaded
                continue
            if state is c.state or c.campaign_changed:  # unchanged, or ours not written yet
                continue
            with contextlib.suppress(TransitionNotAllowed):
                if state is CampaignState.PAUSED:
                    c.pause(now)
                elif state is CampaignState.RUNNING:
                    c.resume(now)
                elif state is CampaignState.ABORTED:
                    c.abort(now)

    async def run(self, *, elected: Elected = always) -> None:
        """Advance the campaigns every ``tick_s`` while ``elected()``."""
        while True:
            try:
                await self.lead(elected())
                if self.leading:
                    for order in self.tick(self.clock.now()):
                        self._send_later(order)
                    await self.flush()
            except Exception:
                log.exception("firmware tick failed; retried at the next tick")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_s)
            self._wake.clear()

    async def flush(self) -> None:
        """Persist every change; forget campaigns that need nothing more."""
        for c in list(self.campaigns.values()):
            await self.store.save(c)
            if not c.active and not any(r.state is StationState.UPDATING for r in c.stations.values()):
                self.campaigns.pop(c.id, None)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.leading:  # another node's campaigns are the leader's to write
            with contextlib.suppress(Exception):
                await self.flush()

    def _send_later(self, order: Order) -> None:
        task = asyncio.create_task(self._send(order), name=f"firmware-{order.order.charger_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, order: Order) -> None:
        campaign = self.campaigns.get(order.campaign_id)
        if campaign is None or campaign.unsent(order.order.charger_id, self.clock.now()):
            return
        spec = campaign.spec
        retrieve_at = max(spec.retrieve_at or self.clock.now(), self.clock.now())
        location = spec.location or self.download_url(spec.file_id or "", retrieve_at)
        request = FirmwareRequest(location=location, retrieve_at=retrieve_at,
                                  request_id=order.order.request_id, signature=spec.signature,
                                  signing_certificate=spec.signing_certificate)
        async with self._sends:
            try:
                accepted, detail = await self.sender.send(order.order.charger_id, request)
            except Exception as exc:  # a station error is its attempt's failure, never the loop's
                accepted, detail = False, f"send failed: {exc}"[:200]
        campaign.on_sent(order.order.charger_id, accepted, detail, self.clock.now())
        self._wake.set()

