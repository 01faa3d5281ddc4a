"""When the hub lets Python's cyclic garbage collector walk its memory. No I/O: the server carries the steps out.

The store's state (orders, items, tickets, the replay log) holds no reference cycles: it is freed by reference
counting the moment it is dropped. Yet every full collection walked all of it: with a few thousand orders in memory
a full pass took 60 ms, and every screen's events waited behind it (the worst order-to-screen times of a rush).

So, during service, what has survived a while is frozen (`gc.freeze`: the collector no longer walks it) and only
young objects are collected, as usual and quickly: `kds serve` also keeps Python from starting a full collection on its
own (`young_only`). The cost: a reference cycle that dies after it was frozen (a
connection object that lived a minute and then closed) is not reclaimed until the next full collection, which runs in
a quiet moment (no frame for `QUIET_S`) at most once every `FULL_EVERY_S`, and at the latest after `FULL_LATEST_S`.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from enum import Enum

FREEZE_EVERY_S = 5.0
"""Survivors are frozen this often (what builds up between two freezes is what an automatic full pass may walk)."""
FULL_EVERY_S = 3600.0
"""A full collection (everything unfrozen and walked) runs at most this often, in a quiet moment..."""
QUIET_S = 2.0
"""...one without any frame from any device for this long..."""
FULL_LATEST_S = 6 * 3600.0
"""...and at the latest this long after the last one, quiet or not."""


class Collect(Enum):
    """What to do now."""

    NOTHING = "nothing"
    FREEZE = "freeze"
    """Collect the young generations, then freeze whatever survives."""
    FULL = "full"
    """Unfreeze everything, collect it all, freeze the survivors."""


@dataclass
class CollectorPolicy:
    """Decides, at each housekeeping tick, what the collector does (times in seconds of a monotonic clock)."""

    started: float
    last_freeze: float = float("-inf")
    last_full: float | None = None

    def tick(self, now: float, last_frame: float | None) -> Collect:
        """The step for this tick; `last_frame` is when the hub last received a frame (None: never)."""
        since_full = now - (self.last_full if self.last_full is not None else self.started)
        quiet = last_frame is None or now - last_frame >= QUIET_S
        if (since_full >= FULL_EVERY_S and quiet) or since_full >= FULL_LATEST_S:
            self.last_full = self.last_freeze = now
            return Collect.FULL
        if now - self.last_freeze >= FREEZE_EVERY_S:
            self.last_freeze = now
            return Collect.FREEZE
        return Collect.NOTHING


NEVER = 1 << 30
"""The third threshold during service: Python starts a full collection on its own only after this many collections of
the middle generation (a few a second in a rush: never, in practice)."""


def young_only() -> tuple[int, int, int]:
    """During service, no full collection starts on its own: Python's thresholds would start one every ten
    collections of the middle generation, and it walks everything that survived since the last freeze (up to
    `FREEZE_EVERY_S` of a rush: 23-41 ms seen at 500 orders/s, the worst order-to-screen times of the run). What
    survives is frozen at the next tick instead, and a full collection runs in a quiet moment (`CollectorPolicy`).
    Returns the thresholds before."""
    before = gc.get_threshold()
    gc.set_threshold(before[0], before[1], NEVER)
    return before


def carry_out(step: Collect) -> int:
    """Do `step`; returns the objects the collections found unreachable."""
    if step is Collect.FREEZE:
        found = gc.collect(1)
        gc.freeze()
        return found
    if step is Collect.FULL:
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        return found
    return 0
