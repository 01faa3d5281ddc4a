"""Small pure helpers for the hub's limits: token buckets (rates) and a log throttle. No I/O, injected time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; `take` spends one if there is one."""

    rate: float
    burst: float
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> bool:
        """Spend a token at time `now` (seconds, monotonic); False when there is none."""
        if self.tokens < 0:
            self.tokens, self.at = self.burst, now
        else:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def peek(self, now: float) -> bool:
        """True when `take` would succeed now (nothing is spent)."""
        return self.tokens < 0 or min(self.burst, self.tokens + (now - self.at) * self.rate) >= 1.0

    def full(self, now: float) -> bool:
        """True when the bucket has refilled completely (nobody used it lately: it may be forgotten)."""
        return self.tokens < 0 or self.tokens + (now - self.at) * self.rate >= self.burst


class LogThrottle:
    """At most one log line per key per `interval` seconds; the lines held back are counted for the next one."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, key: str, now: float) -> int | None:
        """None: hold this line back. Otherwise log it, with the number of lines held back since the last one."""
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)

    def forget(self, now: float) -> None:
        """Drop keys that have been quiet for a while (bounded memory whatever the keys are)."""
        for key in [k for k, t in self._last.items() if now - t > 10 * self.interval and k not in self._held]:
            del self._last[key]
