"""Admission control around the WebSocket server, against floods and slow clients.

* Connections that have not yet been upgraded (slowloris, or a TLS session that never sends
  its request) are counted per IP and in total from the moment the connection is made; over
  the cap a new one is aborted at once. The open timeout then evicts the ones admitted.
* Handshakes are rate-limited by a token bucket: over the rate, HTTP 503 with Retry-After.
* Failed logins are counted per IP; over the limit, HTTP 429 without checking anything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from csms.config import LimitsConfig
from csms.security.limits import Gauge, TokenBucket, WindowCounter


def peer_ip(transport: Any) -> str:
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if isinstance(peer, tuple) and peer else "?"


class Admission:
    """Shared limits of one OCPP endpoint (``admit_pre_auth`` from each new connection)."""

    def __init__(
        self, limits: LimitsConfig, registry: CollectorRegistry,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.accept = TokenBucket(limits.accept_rate, limits.accept_burst)
        self.pre_auth = Gauge(limits.max_pre_auth_per_ip, limits.max_pre_auth_total)
        self.failures = WindowCounter(limits.auth_failures_per_ip, 60.0)
        self.refused = Counter(
            "csms_admission_refused_total", "Connections refused before authentication, by reason",
            ["reason"], registry=registry,
        )

    def take_handshake(self) -> bool:
        """One handshake may proceed (accept-rate limit)."""
        if self.accept.take(self.clock()):
            return True
        self.refused.labels("accept_rate").inc()
        return False

    def retry_after_s(self) -> int:
        return max(1, round(self.accept.retry_after()))

    def throttled(self, ip: str) -> bool:
        """Too many failed logins from ``ip`` in the current minute."""
        if self.failures.exceeded(ip, self.clock()):
            self.refused.labels("auth_failures").inc()
            return True
        return False

    def failed(self, ip: str) -> int:
        return self.failures.add(ip, self.clock())

    def admit_pre_auth(self, transport: asyncio.BaseTransport) -> str | None:
        """Count a new connection as not yet upgraded; its IP, or None once aborted over a cap."""
        ip = peer_ip(transport)
        refusal = self.pre_auth.acquire(ip)
        if refusal is None:
            return ip
        self.refused.labels(f"pre_auth_{refusal}").inc()
        if isinstance(transport, asyncio.Transport):
            transport.abort()
        else:
            transport.close()
        return None
