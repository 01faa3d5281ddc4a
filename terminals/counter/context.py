"""What every view of the counter shares: the hub client, the clocks, and the store as the hub described it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from kds.client import HubClient
from terminals.counter.catalogue import Catalogue


@dataclass
class CounterContext:
    """The counter's link to the hub and its clocks (injectable, so tests and snapshots are deterministic)."""

    client: HubClient
    now: Callable[[], datetime]
    """Wall clock (aware datetimes) for countdowns, ages and claim-tag ids."""
    monotonic: Callable[[], float]
    """For "last event 3 s ago" in the status bar (compared with `HubClient.last_event_at`)."""
    hub_label: str | None = None
    """How the status bar names the hub (its URL when None)."""
    printers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Printers in trouble (the hub's last `printer.status` for each, while not ok)."""
    _catalogue: tuple[dict[str, Any], Catalogue] | None = field(default=None, repr=False)

    @property
    def store(self) -> dict[str, Any]:
        """`welcome.store`: stations, thresholds, catalogue and cooking methods (empty before the first welcome)."""
        return self.client.book.store

    @property
    def catalogue(self) -> Catalogue:
        """The catalogue of the last welcome (rebuilt when a new welcome brings a new one)."""
        store = self.store
        if self._catalogue is None or self._catalogue[0] is not store:
            self._catalogue = (store, Catalogue.from_store(store))
        return self._catalogue[1]

    @property
    def tz(self) -> ZoneInfo:
        """The store's time zone (times on screen are the store's local times)."""
        try:
            return ZoneInfo(str(self.store.get("timezone") or "UTC"))
        except (KeyError, ValueError):
            return ZoneInfo("UTC")

    def local(self, when: datetime) -> str:
        """`12:30` in the store's time zone."""
        return when.astimezone(self.tz).strftime("%H:%M")
