"""What every view of the counter shares: the hub client, the clocks, and the store as the hub described it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from kds.client import HubClient
from kds.config import MAJOR_ALLERGENS, Language, StoreConfig
from kds.i18n import allergen_name, item_names, method_name, station_name
from kds.protocol import PrinterStatus, StoreView
from terminals.counter.catalogue import AllergenChoice, Catalogue
from terminals.counter.words import WORDS


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
    config: StoreConfig | None = None
    """The store's config when the counter has it (`kds counter` reads it for the device's token): the screen's
    language and the store's declared allergens. Without it the screen speaks English and offers the allergens the
    hub's welcome lists, else the major allergens (the hub's own default list)."""
    printers: dict[str, PrinterStatus] = field(default_factory=dict)
    """Printers in trouble (the hub's last `printer.status` for each, while not ok)."""
    _catalogue: tuple[StoreView | None, Catalogue] | None = field(default=None, repr=False)

    @property
    def store(self) -> StoreView | None:
        """`welcome.store`: stations, thresholds, catalogue and cooking methods (None before the first welcome)."""
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
            return ZoneInfo((self.store.timezone if self.store is not None else None) or "UTC")
        except (KeyError, ValueError):
            return ZoneInfo("UTC")

    def local(self, when: datetime) -> str:
        """`12:30` in the store's time zone."""
        return when.astimezone(self.tz).strftime("%H:%M")

    # ------------------------------------------------------------------ language

    @property
    def lang(self) -> Language:
        """The screen's language: the device's own in the config, else the store's; English without a config."""
        return self.config.language_of(self.client.device) if self.config is not None else Language.EN

    def w(self, en: str) -> str:
        """A fixed word of the counter in the screen's language."""
        return WORDS(self.lang, en)

    @property
    def allergens(self) -> list[AllergenChoice]:
        """The allergens the store declares: the clerk picks a customer's allergies from these only."""
        wire = self.store.allergens if self.store is not None else []
        if wire:
            return [AllergenChoice(a.id, a.name, a.name_zh or a.name) for a in wire]
        declared = self.config.allergens if self.config is not None else MAJOR_ALLERGENS
        return [AllergenChoice(a.id, a.name, a.name_zh) for a in declared]

    def allergen_name(self, allergen_id: str) -> str:
        """An allergen by name in the screen's language (its id when nobody declares it)."""
        if self.config is not None:
            return allergen_name(self.config, allergen_id, self.lang)
        a = next((a for a in self.allergens if a.id == allergen_id), None)
        return allergen_id if a is None else a.name

    def method_name(self, method_id: str) -> str:
        """A cooking method by name in the screen's language."""
        if self.config is not None and self.config.method(method_id) is not None:
            return method_name(self.config, method_id, self.lang)
        m = self.catalogue.method(method_id)
        if m is None:
            return method_id
        return m.name_zh if self.lang == Language.ZH and m.name_zh else m.name

    def station_name(self, station_id: str) -> str:
        """A station by name in the screen's language (its id in English: short, as the kitchen calls it)."""
        if self.lang == Language.EN or self.config is None:
            return station_id
        return station_name(self.config, station_id, self.lang)

    def item_names(self, sku: str, name: str, name_zh: str = "") -> tuple[str, str | None]:
        """An item's two names, the screen's language first."""
        if self.config is not None and self.config.item(sku) is not None:
            return item_names(self.config, sku, name, self.lang)
        if self.lang == Language.ZH and name_zh:
            return name_zh, (name if name != name_zh else None)
        return name, (name_zh if name_zh and name_zh != name else None)
