"""Telegram-like flood limits: token buckets that reject instead of queueing."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Limits:
    enabled: bool = True
    global_per_s: float = 30.0
    per_chat_per_s: float = 1.0
    per_chat_burst: int = 3
    per_group_per_min: float = 20.0
    per_group_burst: int = 20
    global_burst: int = 30
    time_scale: float = 1.0  # 10 = time passes ten times faster for the buckets


@dataclass
class _Bucket:
    tokens: float
    last: float

    def refill(self, now: float, rate: float, capacity: float) -> None:
        self.tokens = min(capacity, self.tokens + (now - self.last) * rate)
        self.last = now

    def wait(self, rate: float) -> float:
        """Real seconds until one token is available (0 if one is there now)."""
        if self.tokens >= 1:
            return 0.0
        return math.inf if rate <= 0 else (1 - self.tokens) / rate


class ManualClock:
    """A clock that stands still until a test moves it on, for the buckets (``clock=``):
    limits are then checked in emulator time, whatever the machine's load."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RateLimiter:
    """Buckets per chat and one global; reads `limits` on every call so tests may change it."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._global: _Bucket | None = None
        self._chats: dict[int, _Bucket] = {}

    def reset(self) -> None:
        self._global = None
        self._chats.clear()

    def acquire(self, chat_id: int) -> int | None:
        """Take a token for a send to `chat_id`; return retry_after seconds if over a limit."""
        limits = self.limits
        if not limits.enabled:
            return None
        now = self._clock()
        scale = limits.time_scale
        if chat_id > 0:
            chat_rate, chat_cap = limits.per_chat_per_s * scale, limits.per_chat_burst
        else:
            chat_rate, chat_cap = limits.per_group_per_min / 60 * scale, limits.per_group_burst
        if self._global is None:
            self._global = _Bucket(limits.global_burst, now)
        chat = self._chats.setdefault(chat_id, _Bucket(chat_cap, now))
        checks = [
            (self._global, limits.global_per_s * scale, limits.global_burst),
            (chat, chat_rate, chat_cap),
        ]
        for bucket, rate, capacity in checks:
            bucket.refill(now, rate, capacity)
        wait = max(bucket.wait(rate) for bucket, rate, _ in checks)
        if wait > 0:
            # Telegram never says "retry after 0"; an unrefillable bucket still gets a number.
            return max(1, math.ceil(wait)) if math.isfinite(wait) else 3600
        for bucket, _, _ in checks:
            bucket.tokens -= 1
        return None
