"""The firmware plugin: images on disk, campaigns on a tick, station messages from the bus."""

from __future__ import annotations

import asyncio

import structlog

from csms.cluster.events import subscribe_all
from csms.firmware.campaign import LiveStation
from csms.firmware.files import DownloadTokens, FirmwareBlobs, kept_secret
from csms.firmware.sender import OcppUpdateSender
from csms.firmware.service import WATCHED, FirmwareService, firmware_news
from csms.plugins import Cleanup, PluginContext
from csms.store.firmware import SqlFirmware

log = structlog.get_logger("csms.firmware")

URL_KEY_FILE = "firmware-url.key"  # under settings.files_path(): the download links' key when not configured


async def firmware_plugin(ctx: PluginContext) -> Cleanup | None:
    """Firmware campaigns on unless ``firmware.enabled`` is false."""
    cfg = ctx.settings.firmware
    if not cfg.enabled:
        log.info("firmware campaigns disabled")
        return None

    def live(charger_id: str) -> LiveStation:
        session = ctx.sessions.get(charger_id)
        station = ctx.service.live.get(charger_id)
        version = station.info.firmware_version if station is not None and station.info else None
        online = (session is not None and not session.closed) or ctx.elsewhere(charger_id)
        return LiveStation(online, version)

    files = ctx.settings.files_path()
    secret = cfg.url_secret or await asyncio.to_thread(kept_secret, files / URL_KEY_FILE)
    service = FirmwareService(
        SqlFirmware(ctx.db), FirmwareBlobs(files / "firmware", cfg.max_file_bytes),
        DownloadTokens(secret),
        OcppUpdateSender(ctx.commands, ctx.commands.protocol_of, cfg.call_timeout_s),
        ctx.clock, live, ctx.targets, tick_s=cfg.tick_s, download_ttl_s=cfg.download_ttl_s,
        max_parallel_sends=cfg.max_parallel_sends,
    )
    service.public_base_url = ctx.public_base_url
    await service.load()
    # the scheduling node hears every core's stations
    unsubscribe = subscribe_all(ctx.all_events(), service.on_event, *WATCHED, where=firmware_news)
    ctx.spawn(service.run(elected=ctx.elected("firmware-campaigns")), "firmware-campaigns")
    ctx.parts.firmware = service
    log.info("firmware campaigns on", active=len(service.campaigns))

    async def cleanup() -> None:
        unsubscribe()
        await service.stop()
        ctx.parts.firmware = None

    return cleanup
