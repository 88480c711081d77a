"""The alarms plugin: the service on the bus, its worker, the webhook and the metrics."""

from __future__ import annotations

from datetime import datetime

import httpx
import orjson
import structlog
from prometheus_client import Counter

from csms.alarms.metrics import ActiveAlarms, webhook_failures
from csms.alarms.service import WATCHED, AlarmService
from csms.alarms.webhook import WebhookSender, WebhookSettings
from csms.core.alarms import Alarm, Thresholds, fields
from csms.errors import ConfigError
from csms.plugins import Cleanup, PluginContext
from ocppj.timestamps import format_datetime

log = structlog.get_logger("csms.alarms")


def webhook_body(alarm: Alarm) -> bytes:
    """The JSON the webhook receives for ``alarm``'s current state."""
    doc = {k: format_datetime(v, timespec="auto") if isinstance(v, datetime) else v
           for k, v in fields(alarm).items()}
    return orjson.dumps(doc)


async def alarms_plugin(ctx: PluginContext) -> Cleanup | None:
    """Alarms on unless ``alarms.enabled`` is false."""
    cfg = ctx.settings.alarms
    if not cfg.enabled or ctx.alarm_store is None:
        log.info("alarms disabled")
        return None
    if cfg.webhook_url:
        if not cfg.webhook_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"alarms.webhook_url must be an http:// or https:// URL (got {cfg.webhook_url!r})"
            )
        try:
            httpx.URL(cfg.webhook_url)
        except httpx.InvalidURL as exc:
            raise ConfigError(f"alarms.webhook_url is not a valid URL: {exc}") from None
        if not cfg.webhook_secret:
            raise ConfigError(
                "alarms.webhook_secret (CSMS_ALARM_WEBHOOK_SECRET) is required with a webhook_url: "
                "receivers verify the X-CSMS-Signature with it"
            )
    failures = webhook_failures(ctx.metrics.registry)
    lost = Counter("csms_alarm_transitions_lost", "Alarm transitions given up after the store refused "
                   "them through every retry", registry=ctx.metrics.registry)
    sender: WebhookSender | None = None
    if cfg.webhook_url:
        sender = WebhookSender(
            WebhookSettings(
                url=cfg.webhook_url, secret=cfg.webhook_secret, attempts=cfg.webhook_attempts,
                retry_initial_s=cfg.webhook_retry_initial_s, retry_max_s=cfg.webhook_retry_max_s,
                timeout_s=cfg.webhook_timeout_s, queue=cfg.webhook_queue,
            ),
            on_failure=failures.inc,
        )
        ctx.spawn(sender.run(), "alarm-webhook")
    def notify(alarm: Alarm) -> None:
        if sender is not None:
            sender.offer(webhook_body(alarm))

    limits = Thresholds(
        offline_after_s=cfg.offline_after_s or 3 * ctx.settings.heartbeat_interval_s,
        clock_offset_max_s=cfg.clock_offset_max_s,
    )
    service = AlarmService(
        ctx.alarm_store, ctx.service.live, ctx.clock, limits, publish=ctx.bus.publish,
        notify=notify,
        tick_s=cfg.tick_s, on_lost=lost.inc,
    )
    await service.load()
    active = ActiveAlarms(lambda: service.book)
    ctx.metrics.registry.register(active)
    unsubscribe = ctx.bus.subscribe(service.on_event, *WATCHED)
    service.elsewhere = ctx.elsewhere  # a station another core serves is not offline
    service.shared = bool(ctx.settings.cluster.bus)  # several core nodes: alarms, stations from the store
    ctx.spawn(service.run(elected=ctx.elected("alarms")), "alarms")
    ctx.parts.alarms = service
    log.info("alarms on", active=len(service.book.active), webhook=bool(sender),
             offline_after_s=limits.offline_after_s)

    async def cleanup() -> None:
        unsubscribe()
        ctx.parts.alarms = None
        ctx.metrics.registry.unregister(active)

    return cleanup
