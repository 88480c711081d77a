"""The uploads plugin: the service on the bus, its worker, and the files' directory."""

from __future__ import annotations

import structlog
from prometheus_client import Counter

from csms.plugins import Cleanup, PluginContext
from csms.store.uploads import SqlUploads
from csms.uploads.files import FileStore
from csms.uploads.requests import OcppLogRequests
from csms.uploads.service import WATCHED, UploadLimits, UploadService

log = structlog.get_logger("csms.uploads")


async def uploads_plugin(ctx: PluginContext) -> Cleanup | None:
    """Uploads on unless ``uploads.enabled`` is false; files under ``files_path()/uploads``."""
    cfg = ctx.settings.uploads
    if not cfg.enabled:
        log.info("uploads disabled")
        return None
    max_bytes = int(cfg.max_mb * 1024 * 1024)
    registry = ctx.metrics.registry
    received = Counter("csms_uploads_received", "Files uploaded by stations and kept", registry=registry)
    received_bytes = Counter("csms_upload_bytes", "Bytes of the files kept", registry=registry)
    refused = Counter("csms_uploads_refused", "Uploads turned away or broken off, by reason "
                      "(not_found, conflict, payload_too_large, timeout, broken)",
                      ["reason"], registry=registry)

    def kept(size: int) -> None:
        received.inc()
        received_bytes.inc(size)

    service = UploadService(
        SqlUploads(ctx.db), FileStore(ctx.settings.files_path() / "uploads", max_bytes),
        OcppLogRequests(ctx.commands), ctx.clock,
        UploadLimits(max_bytes=max_bytes, token_ttl_s=cfg.token_ttl_s, retention_days=cfg.retention_days,
                     prune_interval_s=cfg.prune_interval_s, receive_timeout_s=cfg.receive_timeout_s),
        on_received=kept, on_refused=lambda reason: refused.labels(reason).inc(),
        public_base=ctx.public_base_url,
    )
    unsubscribe = ctx.bus.subscribe(service.on_event, *WATCHED)
    ctx.spawn(service.run(elected=ctx.elected("upload-retention")), "uploads")
    ctx.parts.uploads = service

    async def cleanup() -> None:
        unsubscribe()
        ctx.parts.uploads = None
        for metric in (received, received_bytes, refused):
            registry.unregister(metric)

    return cleanup
