"""Alarm deliveries to an operator's webhook: signed JSON POSTs, retried with back-off.

Each body is signed with ``X-CSMS-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``
under ``alarms.webhook_secret``. One worker posts the queued bodies in order, so an alarm's
changes arrive in the order they happened; a failing delivery is retried with exponential
back-off and jitter up to ``webhook_attempts`` times, then logged, counted and dropped. The
queue is bounded: past ``webhook_queue`` waiting deliveries new ones are dropped and counted.
An error no retry mends (``httpx.InvalidURL``, anything not an ``httpx.HTTPError``) fails the
delivery at once, counted; the worker goes on with the next one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import structlog

log = structlog.get_logger("csms.alarms")

SIGNATURE_HEADER = "X-CSMS-Signature"


def signature(secret: str, body: bytes) -> str:
    """The ``X-CSMS-Signature`` value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff_s(attempt: int, initial_s: float, max_s: float, rand: Callable[[], float]) -> float:
    """The wait after failed ``attempt`` (1-based): doubling from ``initial_s`` up to ``max_s``,
    the upper half jittered so retries of many CSMS processes spread out."""
    ceiling = min(max_s, initial_s * 2.0 ** (attempt - 1))
    return ceiling / 2 + rand() * ceiling / 2


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookSettings:
    url: str
    secret: str
    attempts: int = 8
    retry_initial_s: float = 1.0
    retry_max_s: float = 60.0
    timeout_s: float = 10.0
    queue: int = 10_000


class WebhookSender:
    """Posts queued bodies to one URL; ``run`` is its worker."""

    def __init__(
        self, settings: WebhookSettings, *, on_failure: Callable[[], None] = lambda: None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.on_failure = on_failure
        self._sleep = sleep
        self._rand = rand
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(settings.queue)
        self.delivered = 0
        self.dropped = 0

    def offer(self, body: bytes) -> bool:
        """Queue ``body``; False (logged, counted as failed) when the queue is full."""
        try:
            self._queue.put_nowait(body)
        except asyncio.QueueFull:
            self.dropped += 1
            self.on_failure()
            log.warning("alarm webhook queue full, delivery dropped", queued=self._queue.qsize())
            return False
        return True

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def run(self) -> None:
        s = self.settings
        async with httpx.AsyncClient(timeout=s.timeout_s) as client:
            while True:
                body = await self._queue.get()
                try:
                    await self._deliver(client, body)
                except Exception:  # nothing may stop the worker: the next delivery still goes out
                    self.on_failure()
                    log.exception("alarm webhook delivery failed", host=self._host())
                finally:
                    self._queue.task_done()

    def _host(self) -> str | None:
        """The webhook's host for logs (not the URL: it may carry a token)."""
        try:
            return urlsplit(self.settings.url).hostname
        except ValueError:
            return None

    async def _deliver(self, client: httpx.AsyncClient, body: bytes) -> bool:
        s = self.settings
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(s.secret, body)}
        problem = ""
        for attempt in range(1, s.attempts + 1):
            try:
                response = await client.post(s.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # e.g. httpx.InvalidURL: no retry mends it
                self.on_failure()
                log.error("alarm webhook delivery failed", host=self._host(), attempts=attempt,
                          error=f"{type(exc).__name__}: {exc}")
                return False
            else:
                if response.is_success:
                    self.delivered += 1
                    return True
                problem = f"HTTP {response.status_code}"
            if attempt < s.attempts:
                await self._sleep(backoff_s(attempt, s.retry_initial_s, s.retry_max_s, self._rand))
        self.on_failure()
        log.error("alarm webhook delivery failed", host=self._host(), attempts=s.attempts, error=problem)
        return False
