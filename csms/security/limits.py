"""Rate limits, sans I/O: time is passed in, so tests drive it.

``TokenBucket`` bounds a rate with a burst; ``WindowCounter`` counts events per key in a
fixed window (failed logins per IP); ``Gauge`` counts things in progress per key with a
per-key and a total cap (connections not yet authenticated).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second up to ``burst``; a rate of 0 means unlimited."""

    rate: float
    burst: int
    _tokens: float = field(init=False)
    _at: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._tokens = float(self.burst)

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        if self.rate <= 0:
            return True
        if self._at is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def retry_after(self) -> float:
        """Seconds until the next token (an estimate for ``Retry-After``)."""
        return 0.0 if self.rate <= 0 else max(0.0, (1.0 - self._tokens) / self.rate)


class WindowCounter:
    """Events per key in fixed windows of ``window_s``; at most ``max_keys`` keys are tracked."""

    def __init__(self, limit: int, window_s: float = 60.0, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def _current(self, key: str, now: float) -> tuple[float, int]:
        start, count = self._counts.get(key, (now, 0))
        if now - start >= self.window_s:
            return now, 0
        return start, count

    def add(self, key: str, now: float) -> int:
        """Count one event; returns the count in the current window."""
        start, count = self._current(key, now)
        self._counts[key] = (start, count + 1)
        self._counts.move_to_end(key)
        while len(self._counts) > self.max_keys:
            self._counts.popitem(last=False)
        return count + 1

    def exceeded(self, key: str, now: float) -> bool:
        """True once ``limit`` events were counted in the current window (a limit of 0 never is)."""
        return self.limit > 0 and self._current(key, now)[1] >= self.limit

    def reset(self, key: str) -> None:
        self._counts.pop(key, None)


class Gauge:
    """Things in progress per key, capped per key and in total (0 = no cap)."""

    def __init__(self, per_key: int, total: int) -> None:
        self.per_key = per_key
        self.total_cap = total
        self._by_key: dict[str, int] = {}
        self.total = 0

    def acquire(self, key: str) -> str | None:
        """Count one in; returns why it is refused (``per_key``/``total``) or None when admitted."""
        if self.total_cap and self.total >= self.total_cap:
            return "total"
        if self.per_key and self._by_key.get(key, 0) >= self.per_key:
            return "per_key"
        self._by_key[key] = self._by_key.get(key, 0) + 1
        self.total += 1
        return None

    def release(self, key: str) -> None:
        n = self._by_key.get(key, 0)
        if n <= 0:
            return
        self.total -= 1
        if n == 1:
            del self._by_key[key]
        else:
            self._by_key[key] = n - 1

    def count(self, key: str) -> int:
        return self._by_key.get(key, 0)
