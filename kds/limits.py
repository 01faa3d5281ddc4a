"""Small pure helpers for the hub's limits: token buckets (rates), a log throttle, the per-device lockout. No I/O,
injected time."""

from __future__ import annotations

import math
from collections import deque
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


class DeviceLockout:
    """Locks a device out after `failures` wrong tokens within `window_s`, for `lock_s` seconds.

    Guessing one device's token from many addresses is slowed to `failures` guesses per lock, whatever the
    per-address limits allow. So that a rogue device cannot lock the real one out, an address the device
    authenticated from within `trust_s` is spared: its hellos are still checked during a lockout (and its wrong
    tokens still count). Memory is bounded by the caller's devices: per device at most `failures` failure times
    and `max_addresses` trusted addresses; `forget` drops what has expired.
    """

    def __init__(
        self, *, failures: int, window_s: float, lock_s: float, trust_s: float, max_addresses: int = 16
    ) -> None:
        self.failures = failures
        self.window_s = window_s
        self.lock_s = lock_s
        self.trust_s = trust_s
        self.max_addresses = max_addresses
        self._failed: dict[str, deque[float]] = {}
        self._locked: dict[str, float] = {}
        """Device → the time its lockout ends."""
        self._trusted: dict[str, dict[str, float]] = {}
        """Device → address → the last time it authenticated from there."""

    def retry_after(self, device: str, address: str, now: float) -> int | None:
        """Whole seconds until `device` may connect from `address` again; None when its hello may be checked now."""
        until = self._locked.get(device)
        if until is None or now >= until or self.trusted(device, address, now):
            return None
        return max(1, math.ceil(until - now))

    def trusted(self, device: str, address: str, now: float) -> bool:
        """Whether `device` authenticated from `address` within `trust_s`."""
        seen = self._trusted.get(device, {}).get(address)
        return seen is not None and now - seen <= self.trust_s

    def failed(self, device: str, now: float) -> bool:
        """Count a wrong token for `device`; True when this one locks it out (the caller logs that, once)."""
        until = self._locked.get(device)
        if until is not None and now < until:
            return False  # already locked (a spared address's mistakes do not make it longer)
        times = self._failed.setdefault(device, deque(maxlen=self.failures))
        times.append(now)
        while times and now - times[0] > self.window_s:
            times.popleft()
        if len(times) < self.failures:
            return False
        self._locked[device] = now + self.lock_s
        del self._failed[device]
        return True

    def succeeded(self, device: str, address: str, now: float) -> None:
        """`device` authenticated from `address`: that address is spared by its lockouts for `trust_s`."""
        if self.trust_s <= 0:
            return
        seen = self._trusted.setdefault(device, {})
        seen.pop(address, None)
        seen[address] = now  # newest last
        while len(seen) > self.max_addresses:
            del seen[next(iter(seen))]

    def forget(self, now: float) -> None:
        """Drop expired lockouts, failures older than the window and addresses no longer trusted."""
        for device in [d for d, until in self._locked.items() if now >= until]:
            del self._locked[device]
        for device in [d for d, times in self._failed.items() if not times or now - times[-1] > self.window_s]:
            del self._failed[device]
        for device, seen in list(self._trusted.items()):
            for address in [a for a, t in seen.items() if now - t > self.trust_s]:
                del seen[address]
            if not seen:
                del self._trusted[device]

    def size(self) -> int:
        """Entries held (devices with failures or a lockout, trusted addresses): what `forget` keeps bounded."""
        return len(self._failed) + len(self._locked) + sum(len(s) for s in self._trusted.values())
